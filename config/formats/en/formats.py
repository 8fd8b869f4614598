"""English formats: one date-time format, "3 Dec 2026, 19:00", and one date format, "3 Dec 2026"
(issue 17, item 10: Django's English mixes "Dec. 3, 2026" and "12/03/2026", and 12/03 reads as
the 12th of March to a Vietnamese eye). The day before the month and a 24-hour clock, as the
Vietnamese UI (config/formats/vi). What is not set here is Django's own
(django/conf/locale/en/formats.py). Loaded through settings.FORMAT_MODULE_PATH.
"""

DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
YEAR_MONTH_FORMAT = "F Y"
MONTH_DAY_FORMAT = "j F"
FIRST_DAY_OF_WEEK = 1  # Monday, as in Vietnam
