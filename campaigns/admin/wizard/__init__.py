"""The campaign wizard: forms.py holds the five step forms, views.py the pages (CampaignWizard),
registered by CampaignAdmin.get_urls. Its reads are campaigns.selectors.wizard, its writes
campaigns.drafts."""
