"""Issue 15 (poison callbacks, unmatched opt-outs):

- WebhookEvent outcome `failed`: an event the database refused, isolated from its batch;
- InboundMessage.opt_out_state, with the replies stored before it backfilled: an opt-out keyword
  with a contact was applied, one without was not matched;
- SenderContact: a provider's sender id (MMP conversation, Zalo user) tied to its contact, and the
  (account, sender) index that finds a sender's earlier replies.

Depends on campaigns 0001 only (Contact): any later campaigns migration may run before or after.
"""

import django.db.models.deletion
from django.db import migrations, models


def opt_out_states_backfill(apps, schema_editor):
    InboundMessage = apps.get_model("webhooks", "InboundMessage")
    keyword = InboundMessage.objects.filter(opted_out=True)
    keyword.filter(contact__isnull=False).update(opt_out_state="applied")
    keyword.filter(contact__isnull=True).update(opt_out_state="not_matched")


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("providers", "0001_initial"),
        ("webhooks", "0004_webhooks_schedules"),
    ]

    operations = [
        migrations.CreateModel(
            name="SenderContact",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("sender", models.CharField(max_length=100, verbose_name="sender")),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("reply", "A reply with a phone number"),
                            ("receipt", "A delivery receipt of a message we sent"),
                        ],
                        max_length=16,
                        verbose_name="learned from",
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated")),
            ],
            options={
                "verbose_name": "reply sender",
                "verbose_name_plural": "reply senders",
            },
        ),
        migrations.AddField(
            model_name="inboundmessage",
            name="opt_out_state",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Not an opt-out"),
                    ("applied", "Opt-out applied"),
                    ("not_matched", "Opt-out request not matched"),
                ],
                default="",
                max_length=16,
                verbose_name="opt-out",
            ),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("received", "Received"),
                    ("applied", "Applied"),
                    ("duplicate", "Duplicate"),
                    ("unmatched", "Unmatched (waiting for its message)"),
                    ("ignored", "Ignored (unsupported)"),
                    ("rejected", "Rejected (malformed)"),
                    ("expired", "Expired (never matched)"),
                    ("failed", "Failed (could not be applied)"),
                ],
                default="received",
                max_length=16,
                verbose_name="outcome",
            ),
        ),
        migrations.AddIndex(
            model_name="inboundmessage",
            index=models.Index(fields=["account", "sender"], name="inbound_sender_idx"),
        ),
        migrations.AddField(
            model_name="sendercontact",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="providers.provideraccount",
                verbose_name="provider account",
            ),
        ),
        migrations.AddField(
            model_name="sendercontact",
            name="contact",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="campaigns.contact",
                verbose_name="contact",
            ),
        ),
        migrations.AddConstraint(
            model_name="sendercontact",
            constraint=models.UniqueConstraint(
                fields=("account", "sender"), name="uniq_sender_contact"
            ),
        ),
        migrations.RunPython(opt_out_states_backfill, migrations.RunPython.noop),
    ]
