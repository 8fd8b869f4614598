"""factory_boy factories shared by every test module."""

import factory
from django.contrib.auth.models import Group, User

from campaigns.contacts.search import contact_search_text
from campaigns.models import Campaign, Contact, ContactList, ContactListMembership, Message
from providers.models import Channel, OfficialAccount, ProviderAccount
from templates_app.models import Template, TemplateParam


class ModelFactory(factory.django.DjangoModelFactory):
    """The base of every factory here: a post-generation hook saves only when it must."""

    class Meta:
        abstract = True
        skip_postgeneration_save = True


class UserFactory(ModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.django.Password("pw-Loa-2026!")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        for name in extracted or []:
            self.groups.add(Group.objects.get(name=name))


class ProviderAccountFactory(ModelFactory):
    class Meta:
        model = ProviderAccount

    name = factory.Sequence(lambda n: f"account{n}")
    kind = "sandbox"

    @factory.post_generation
    def secrets(self, create, extracted, **kwargs):
        if extracted:
            self.set_secrets(extracted)
            self.save()


class OfficialAccountFactory(ModelFactory):
    class Meta:
        model = OfficialAccount

    account = factory.SubFactory(ProviderAccountFactory)
    oa_id = factory.Sequence(lambda n: f"40973112819361{n:05d}")
    name = factory.Sequence(lambda n: f"OA {n}")
    daily_quota = 5000
    remaining_quota = 5000


class ChannelFactory(ModelFactory):
    class Meta:
        model = Channel

    name = factory.Sequence(lambda n: f"channel{n}")
    account = factory.SubFactory(ProviderAccountFactory)
    kind = "zalo_zns"
    official_account = factory.SubFactory(
        OfficialAccountFactory, account=factory.SelfAttribute("..account")
    )


class TemplateFactory(ModelFactory):
    class Meta:
        model = Template

    account = factory.SubFactory(ProviderAccountFactory)
    provider_template_id = factory.Sequence(lambda n: str(205600 + n))
    name = factory.Sequence(lambda n: f"Template {n}")
    status = Template.Status.APPROVED
    price = 300
    body = "Xin chào {{customer_name}}, đơn {{order_code}} đã xác nhận."

    @factory.post_generation
    def params(self, create, extracted, **kwargs):
        names = extracted if extracted is not None else ["customer_name", "order_code"]
        for i, name in enumerate(names):
            TemplateParam.objects.create(template=self, name=name, position=i, max_length=30)


class ContactFactory(ModelFactory):
    class Meta:
        model = Contact

    phone = factory.Sequence(lambda n: f"8490{n:07d}")
    name = factory.Sequence(lambda n: f"Nguyễn Văn {n}")
    attributes = factory.LazyFunction(lambda: {"order": "DH001"})
    search_text = factory.LazyAttribute(lambda o: contact_search_text(o.name))


class ContactListFactory(ModelFactory):
    class Meta:
        model = ContactList

    name = factory.Sequence(lambda n: f"list{n}")

    @factory.post_generation
    def size(self, create, extracted, **kwargs):
        if extracted:
            contacts = ContactFactory.create_batch(extracted)
            ContactListMembership.objects.bulk_create(
                [ContactListMembership(contact_list=self, contact=c) for c in contacts]
            )
            self.contact_count = extracted
            self.save(update_fields=["contact_count"])

    @factory.post_generation
    def contacts(self, create, extracted, **kwargs):
        """ContactListFactory(contacts=[...]): these contacts are its members (the stored
        contact_count is left as it is, as adding members one by one would)."""
        for contact in extracted or []:
            ContactListMembership.objects.create(contact_list=self, contact=contact)


DEFAULT_MAPPING = {
    "customer_name": {"source": "field", "value": "name"},
    "order_code": {"source": "attribute", "value": "order"},
}


class CampaignFactory(ModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = factory.SubFactory(ChannelFactory)
    template = factory.SubFactory(
        TemplateFactory, account=factory.SelfAttribute("..channel.account")
    )
    param_mapping = factory.LazyFunction(lambda: dict(DEFAULT_MAPPING))

    @factory.post_generation
    def lists(self, create, extracted, **kwargs):
        for cl in extracted or []:
            self.lists.add(cl)


def message_for(campaign: Campaign, contact: Contact, **fields) -> Message:
    """An unsaved message of the campaign to the contact, keyed by the pair as the engine keys
    it (fields may override the key); bulk_create a list of them."""
    return Message(
        **{
            "campaign": campaign,
            "contact": contact,
            "phone": contact.phone,
            "idempotency_key": f"k{campaign.pk}-{contact.pk}",
            **fields,
        }
    )
