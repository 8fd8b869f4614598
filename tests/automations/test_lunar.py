"""The Vietnamese lunar calendar (UTC+7) against published data, and the public holidays.

TET_VN is the published table of Tết Nguyên Đán (1/1 lunar) in Vietnam, embedded as data so the
test does not depend on the code under test. 1901-2099: python-holidays 0.108
(holidays/calendars/chinese.py: the Hong Kong Observatory's Chinese table with the
VIETNAMESE_CALENDAR_LUNAR_NEW_YEAR_DATES overrides, maintained with sources by the Vacanza
project). 1900 and 2100: the HKO table (Vietnam and China agree in those years).
Our code is Hồ Ngọc Đức's algorithm, computed independently of that table.
"""

from datetime import date, timedelta

import pytest

from campaigns.automations.calendar.holidays import public_holidays
from campaigns.automations.calendar.lunar import (
    LunarDate,
    leap_month,
    lunar_anniversary,
    lunar_month_length,
    lunar_to_solar,
    solar_to_lunar,
    tet,
)

# year: "MM-DD" of Tết in Vietnam.
TET_VN = {
    1900: "01-31",
    1901: "02-19",
    1902: "02-08",
    1903: "01-28",
    1904: "02-16",
    1905: "02-04",
    1906: "01-25",
    1907: "02-13",
    1908: "02-02",
    1909: "01-22",
    1910: "02-10",
    1911: "01-30",
    1912: "02-18",
    1913: "02-06",
    1914: "01-26",
    1915: "02-14",
    1916: "02-03",
    1917: "01-23",
    1918: "02-11",
    1919: "02-01",
    1920: "02-20",
    1921: "02-08",
    1922: "01-28",
    1923: "02-16",
    1924: "02-05",
    1925: "01-24",
    1926: "02-13",
    1927: "02-02",
    1928: "01-23",
    1929: "02-10",
    1930: "01-30",
    1931: "02-17",
    1932: "02-06",
    1933: "01-26",
    1934: "02-14",
    1935: "02-03",
    1936: "01-24",
    1937: "02-11",
    1938: "01-31",
    1939: "02-19",
    1940: "02-08",
    1941: "01-27",
    1942: "02-15",
    1943: "02-05",
    1944: "01-25",
    1945: "02-13",
    1946: "02-02",
    1947: "01-22",
    1948: "02-10",
    1949: "01-29",
    1950: "02-17",
    1951: "02-06",
    1952: "01-27",
    1953: "02-14",
    1954: "02-03",
    1955: "01-24",
    1956: "02-12",
    1957: "01-31",
    1958: "02-18",
    1959: "02-08",
    1960: "01-28",
    1961: "02-15",
    1962: "02-05",
    1963: "01-25",
    1964: "02-13",
    1965: "02-01",
    1966: "01-21",
    1967: "02-09",
    1968: "01-29",
    1969: "02-16",
    1970: "02-06",
    1971: "01-27",
    1972: "02-15",
    1973: "02-03",
    1974: "01-23",
    1975: "02-11",
    1976: "01-31",
    1977: "02-18",
    1978: "02-07",
    1979: "01-28",
    1980: "02-16",
    1981: "02-05",
    1982: "01-25",
    1983: "02-13",
    1984: "02-02",
    1985: "01-21",
    1986: "02-09",
    1987: "01-29",
    1988: "02-17",
    1989: "02-06",
    1990: "01-27",
    1991: "02-15",
    1992: "02-04",
    1993: "01-23",
    1994: "02-10",
    1995: "01-31",
    1996: "02-19",
    1997: "02-07",
    1998: "01-28",
    1999: "02-16",
    2000: "02-05",
    2001: "01-24",
    2002: "02-12",
    2003: "02-01",
    2004: "01-22",
    2005: "02-09",
    2006: "01-29",
    2007: "02-17",
    2008: "02-07",
    2009: "01-26",
    2010: "02-14",
    2011: "02-03",
    2012: "01-23",
    2013: "02-10",
    2014: "01-31",
    2015: "02-19",
    2016: "02-08",
    2017: "01-28",
    2018: "02-16",
    2019: "02-05",
    2020: "01-25",
    2021: "02-12",
    2022: "02-01",
    2023: "01-22",
    2024: "02-10",
    2025: "01-29",
    2026: "02-17",
    2027: "02-06",
    2028: "01-26",
    2029: "02-13",
    2030: "02-02",
    2031: "01-23",
    2032: "02-11",
    2033: "01-31",
    2034: "02-19",
    2035: "02-08",
    2036: "01-28",
    2037: "02-15",
    2038: "02-04",
    2039: "01-24",
    2040: "02-12",
    2041: "02-01",
    2042: "01-22",
    2043: "02-10",
    2044: "01-30",
    2045: "02-17",
    2046: "02-06",
    2047: "01-26",
    2048: "02-14",
    2049: "02-02",
    2050: "01-23",
    2051: "02-11",
    2052: "02-01",
    2053: "02-18",
    2054: "02-08",
    2055: "01-28",
    2056: "02-15",
    2057: "02-04",
    2058: "01-24",
    2059: "02-12",
    2060: "02-02",
    2061: "01-21",
    2062: "02-09",
    2063: "01-29",
    2064: "02-17",
    2065: "02-05",
    2066: "01-26",
    2067: "02-14",
    2068: "02-03",
    2069: "01-23",
    2070: "02-11",
    2071: "01-31",
    2072: "02-19",
    2073: "02-07",
    2074: "01-27",
    2075: "02-15",
    2076: "02-05",
    2077: "01-24",
    2078: "02-12",
    2079: "02-02",
    2080: "01-22",
    2081: "02-09",
    2082: "01-29",
    2083: "02-17",
    2084: "02-06",
    2085: "01-26",
    2086: "02-14",
    2087: "02-03",
    2088: "01-24",
    2089: "02-10",
    2090: "01-30",
    2091: "02-18",
    2092: "02-07",
    2093: "01-27",
    2094: "02-15",
    2095: "02-05",
    2096: "01-25",
    2097: "02-12",
    2098: "02-01",
    2099: "01-21",
    2100: "02-09",
}

# The years 1900-2100 where Vietnam's Tết (UTC+7) is not China's (UTC+8): Vietnam, China.
# Each differs by one day except 1985, when the UTC+7 solstice month makes a different leap month
# and Tết falls a whole month earlier.
VN_DIFFERS_FROM_CHINA = {
    1903: (date(1903, 1, 28), date(1903, 1, 29)),
    1916: (date(1916, 2, 3), date(1916, 2, 4)),
    1935: (date(1935, 2, 3), date(1935, 2, 4)),
    1965: (date(1965, 2, 1), date(1965, 2, 2)),
    1968: (date(1968, 1, 29), date(1968, 1, 30)),  # Tết Mậu Thân
    1969: (date(1969, 2, 16), date(1969, 2, 17)),
    1985: (date(1985, 1, 21), date(1985, 2, 20)),
    2007: (date(2007, 2, 17), date(2007, 2, 18)),
    2030: (date(2030, 2, 2), date(2030, 2, 3)),
    2053: (date(2053, 2, 18), date(2053, 2, 19)),
}


def test_tet_every_year_1900_2100_matches_the_published_vietnamese_table():
    assert len(TET_VN) == 201
    wrong = {
        year: (tet(year).isoformat(), f"{year}-{md}")
        for year, md in TET_VN.items()
        if tet(year) != date.fromisoformat(f"{year}-{md}")
    }
    assert wrong == {}


@pytest.mark.parametrize("year", sorted(VN_DIFFERS_FROM_CHINA))
def test_years_where_vietnam_differs_from_china(year):
    vietnam, china = VN_DIFFERS_FROM_CHINA[year]
    assert tet(year) == vietnam
    assert tet(year) != china
    assert solar_to_lunar(vietnam) == LunarDate(year, 1, 1, False)
    # China's Tết is an ordinary day of the Vietnamese calendar (mùng 2, or in 1985 a day in month 1).
    assert solar_to_lunar(china) != LunarDate(year, 1, 1, False)


def test_1943_and_1954_are_the_same_in_both_calendars():
    # Sometimes listed among the differing years; both tables and the computation agree they are not.
    assert tet(1943) == date(1943, 2, 5)
    assert tet(1954) == date(1954, 2, 3)


def test_1985_tet_and_the_chinese_date():
    assert tet(1985) == date(1985, 1, 21)
    # China's Tết 1985 (20/02) is mùng 1 of the second month in Vietnam: at UTC+7 the 1984 winter
    # solstice month starts a month earlier, China's leap 10th month of 1984 does not exist here and
    # Vietnam's year Ất Sửu takes its leap month later (tháng 2 nhuận).
    assert solar_to_lunar(date(1985, 2, 20)) == LunarDate(1985, 2, 1, False)
    assert leap_month(1984) is None
    assert leap_month(1985) == 2
    assert solar_to_lunar(date(1985, 1, 20)) == LunarDate(1984, 12, 30, False)


@pytest.mark.parametrize("year", [1900, 1985, 2020, 2023, 2033, 2057, 2099])
def test_round_trip_every_day_of_the_year(year):
    day = date(year, 1, 1)
    while day.year == year:
        lunar = solar_to_lunar(day)
        assert 1 <= lunar.day <= 30
        assert lunar.day <= lunar_month_length(lunar.year, lunar.month, lunar.leap)
        assert lunar_to_solar(lunar.year, lunar.month, lunar.day, lunar.leap) == day
        day += timedelta(days=1)


def test_consecutive_days_advance_the_lunar_day_or_start_a_month():
    day = date(2022, 1, 1)
    previous = solar_to_lunar(day)
    for _ in range(3 * 366):
        day += timedelta(days=1)
        current = solar_to_lunar(day)
        if current.day != 1:
            assert current == previous._replace(day=previous.day + 1)
        else:
            assert previous.day in (29, 30)
        previous = current


def test_leap_month_2023_is_the_second_month():
    assert leap_month(2023) == 2
    # 2/2 lunar and the leap 2/2 lunar (tháng 2 nhuận) are a month apart.
    assert lunar_to_solar(2023, 2, 1) == date(2023, 2, 20)
    assert lunar_to_solar(2023, 2, 1, leap=True) == date(2023, 3, 22)
    assert solar_to_lunar(date(2023, 3, 22)) == LunarDate(2023, 2, 1, True)
    assert lunar_month_length(2023, 2, True) == 29
    assert lunar_to_solar(2023, 3, 1) == date(2023, 4, 20)


def test_other_leap_months():
    assert leap_month(2020) == 4
    assert leap_month(2025) == 6
    assert lunar_to_solar(2025, 6, 1, leap=True) == date(2025, 7, 25)
    assert leap_month(2024) is None
    assert leap_month(2026) is None


def test_invalid_lunar_dates_are_none():
    assert lunar_to_solar(2024, 2, 1, leap=True) is None  # 2024 has no leap month
    assert lunar_to_solar(2023, 3, 1, leap=True) is None  # 2023's leap month is the 2nd
    assert lunar_to_solar(2024, 13, 1) is None
    assert lunar_to_solar(2024, 0, 1) is None
    assert lunar_to_solar(2024, 1, 0) is None
    assert lunar_to_solar(2024, 1, 31) is None
    # Day 30 of a 29-day month does not exist (never rolls over to the next month's 1st).
    short = [m for m in range(1, 13) if lunar_month_length(2024, m) == 29]
    assert short
    for month in short:
        assert lunar_to_solar(2024, month, 30) is None
        assert lunar_to_solar(2024, month, 29) is not None


def test_full_moon_days_and_hung_kings():
    assert lunar_to_solar(2025, 1, 15) == date(2025, 2, 12)  # rằm tháng Giêng 2025
    assert lunar_to_solar(2025, 3, 10) == date(2025, 4, 7)  # Giỗ Tổ Hùng Vương 2025
    assert lunar_to_solar(2024, 8, 15) == date(2024, 9, 17)  # Tết Trung thu 2024


def test_lunar_anniversary_keeps_day_30_on_the_last_day():
    length = lunar_month_length(2024, 12)
    assert lunar_anniversary(2024, 12, 30) == lunar_to_solar(2024, 12, length)
    assert lunar_anniversary(2024, 1, 15) == lunar_to_solar(2024, 1, 15)
    # A leap-month date is kept in the regular month of the same number.
    assert lunar_anniversary(2024, 2, 10) == lunar_to_solar(2024, 2, 10)


def test_public_holidays_2025_follow_the_labour_code():
    days = {h.key: h.date for h in public_holidays(2025)}
    assert days == {
        "new_year": date(2025, 1, 1),
        "tet_eve": date(2025, 1, 28),  # 29 tháng Chạp: month 12 of Giáp Thìn had 29 days
        "tet_1": date(2025, 1, 29),
        "tet_2": date(2025, 1, 30),
        "tet_3": date(2025, 1, 31),
        "tet_4": date(2025, 2, 1),
        "hung_kings": date(2025, 4, 7),
        "reunification": date(2025, 4, 30),
        "labour_day": date(2025, 5, 1),
        "national_day": date(2025, 9, 2),
        "national_day_2": date(2025, 9, 1),
    }
    # Tết: 5 days (Labour Code 2019, art. 112).
    assert len([k for k in days if k.startswith("tet")]) == 5


def test_public_holidays_are_sorted_labelled_and_follow_the_years_law():
    holidays_2024 = public_holidays(2024)
    assert [h.date for h in holidays_2024] == sorted(h.date for h in holidays_2024)
    assert {h.key: h.date for h in holidays_2024}["national_day_2"] == date(2024, 9, 3)
    assert all(str(h.label) for h in holidays_2024)
    assert "culture_day" in {h.key for h in public_holidays(2026)}
    keys_2005 = {h.key for h in public_holidays(2005)}
    assert "hung_kings" not in keys_2005 and "national_day_2" not in keys_2005
    assert "tet_4" not in keys_2005
    assert {h.key: h.date for h in public_holidays(1985)}["tet_1"] == date(1985, 1, 21)
