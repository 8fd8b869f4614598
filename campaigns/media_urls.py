"""Downloads of uploaded contact files and import error reports, permission-checked
(campaigns/media_views.py). Included by config/urls.py under /files/."""

from django.urls import path

from campaigns import media_views

app_name = "campaign_files"

urlpatterns = [
    path("imports/<int:pk>/file/", media_views.import_file, name="import_file"),
    path("imports/<int:pk>/errors/", media_views.import_error_report, name="import_error_report"),
]
