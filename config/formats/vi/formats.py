"""Vietnamese formats: Django's own (django/conf/locale/vi/formats.py) plus what it leaves unset.

Django's vi locale names "." as the thousand separator but sets no NUMBER_GROUPING, so 1000000
would print ungrouped; Vietnamese writes 1.000.000 and dd/mm/yyyy (Django's long date, "Ngày 03
tháng 12 năm 2026", is not used: one format per language). Loaded through
settings.FORMAT_MODULE_PATH = ["config.formats"].
"""

# One date-time format per language (issue 17, item 10): "19:00 03/12/2026" and "03/12/2026"
# everywhere a page shows one, the long and the short names alike; English's is config/formats/en.
DATE_FORMAT = "d/m/Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "H:i d/m/Y"
YEAR_MONTH_FORMAT = "F Y"
MONTH_DAY_FORMAT = "j F"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "H:i d/m/Y"
FIRST_DAY_OF_WEEK = 1  # Monday

DATE_INPUT_FORMATS = ["%d/%m/%Y", "%d-%m-%Y", "%Y-%m-%d", "%d/%m/%y"]
TIME_INPUT_FORMATS = ["%H:%M", "%H:%M:%S", "%H:%M:%S.%f"]
DATETIME_INPUT_FORMATS = [
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
]

DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "."
NUMBER_GROUPING = 3
