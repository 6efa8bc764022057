"""Synthetic source data we write ourselves: a tool catalogue, xlam-format tool-calling rows and
ultrachat-format chat rows.

Used for the embedded quickstart datasets (`scripts/make_quickstart_data.py`), for the prepare
benchmark (`bench/prepare.py`) and by tests. Nothing here is copied from BFCL, xlam or any evaluation
set; in particular no tool carries a name of the held-out `seed-tools` suite (`SEED_TOOL_NAMES`).

Everything is a pure function of `(n, seed)` drawn with `random.Random(seed)`, so the same call always
yields the same rows. Generation is cheap (templates and pools only) because the benchmark asks for
110 000 rows at once.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

# The held-out evaluation suite's tools: the catalogue must never offer these names.
SEED_TOOL_NAMES = frozenset(
    {"get_weather", "search_web", "send_email", "get_stock_price", "translate_text", "calculate", "book_flight"}
)

# Share of tool rows whose answer holds several calls (xlam has about 25%; measured on the quickstart,
# more helps a small model learn parallel calls).
PARALLEL_SHARE = 0.3
# Of the rows calling one tool several times, the share asking in one sentence with a listed value
# ("the weather in Oslo, Rome and Lima") rather than one sentence per call.
LISTED_SHARE = 0.5
# Of the rows asking for calls of different tools (or one tool, not as a list), the share asking in one
# sentence joined by "and"/"then" rather than one sentence per call. Users write both; a model that only
# saw separate sentences reads "do X and Y" as one request.
IN_SENTENCE_SHARE = 0.5
# Weights for 0, 1, 2... distractor tools offered beside the needed ones (rows with one needed tool, rows
# with several), and the most tools a row offers. Choosing among several tools is the skill; each tool
# costs ~110 tokens of prompt, so rows offer 2-5 tools, rarely 6.
DISTRACTORS_SINGLE = (5, 15, 25, 25, 20, 10)
DISTRACTORS_SEVERAL = (40, 40, 20)
MAX_OFFERED = 6
# Share of rows whose tools are spelled otherwise than in the catalogue: camelCase names and parameters,
# another verb (fetch_ for get_), or both. Real APIs name one operation many ways; a model that only
# ever sees one spelling per tool can call it from memory instead of reading the offered schema.
# Measured on four draws (BENCHMARKS.md): 0.3 raised seed-tools (unseen tools) from 0.530 to 0.606 on
# average. 0 draws nothing, so data sets made before it replay.
RESPELLED_SHARE = 0.3

_REQUIRED = object()  # marks a parameter without a default


@dataclass(frozen=True)
class _Param:
    type: str  # xlam's Python-style type, e.g. "int" or "List[str], optional"
    description: str
    draw: Callable[[random.Random], Any]
    default: Any = _REQUIRED
    say: Callable[[Any], str] | None = None  # how the value reads inside a query

    @property
    def optional(self) -> bool:
        return self.default is not _REQUIRED


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    params: dict[str, _Param]
    # Query templates, lower-case first letter; `{param}` placeholders. Every template names all required
    # parameters; optional ones named by a template are set in that call's arguments.
    templates: tuple[str, ...]
    # Draws correlated values (e.g. two units of the same quantity) instead of the per-parameter draws.
    joint: Callable[[random.Random], dict[str, Any]] | None = None

    def schema(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for key, p in self.params.items():
            entry: dict[str, Any] = {"description": p.description, "type": p.type}
            if p.optional:
                entry["default"] = p.default
            params[key] = entry
        return {"name": self.name, "description": self.description, "parameters": params}


# ---------------------------------------------------------------------------------------------------
# Value pools and how values read in text.

_CITIES = (
    "Paris", "Berlin", "Madrid", "Lisbon", "Rome", "Vienna", "Prague", "Oslo", "Stockholm", "Helsinki",
    "Dublin", "Edinburgh", "Amsterdam", "Brussels", "Zurich", "Warsaw", "Budapest", "Athens", "Istanbul",
    "Cairo", "Nairobi", "Cape Town", "Lagos", "Mumbai", "Delhi", "Bangkok", "Singapore", "Seoul", "Tokyo",
    "Osaka", "Sydney", "Melbourne", "Auckland", "Toronto", "Vancouver", "Chicago", "Denver", "Boston",
    "Seattle", "Austin", "Mexico City", "Lima", "Bogota", "Santiago", "Buenos Aires", "Reykjavik",
)
_NAMES = (
    "Alice", "Bob", "Carmen", "Deepak", "Elena", "Farah", "Gustavo", "Hana", "Ivan", "Jonas", "Keiko",
    "Liam", "Maya", "Nikolai", "Olga", "Priya", "Quentin", "Rosa", "Samir", "Tomas", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe", "Amara", "Bruno", "Chloe", "Dmitri", "Esther", "Felix",
)
_SURNAMES = ("Smith", "Garcia", "Khan", "Novak", "Tanaka", "Okafor", "Silva", "Larsen", "Rossi", "Kim")
_EVENT_TITLES = (
    "team sync", "dentist appointment", "project kickoff", "budget review", "yoga class", "book club",
    "quarterly planning", "coffee with a mentor", "design review", "parent-teacher meeting", "guitar lesson",
    "sprint retro", "client call", "lunch with the sales team", "car service",
)
_FOLDERS = ("/home/user/documents", "/home/user/photos", "/srv/data", "/var/log", "/home/user/projects",
            "/tmp/exports", "/home/user/music", "/opt/reports")
_FILES = ("notes.txt", "report.csv", "config.yaml", "todo.md", "invoice_0423.pdf", "server.log", "main.py",
          "budget_2024.xlsx", "README.md", "results.json")
_PATTERNS = ("*.pdf", "*.csv", "*.log", "*.jpg", "*.py", "report_*", "*.md", "backup_*.zip")
_PRODUCTS = (
    "wireless earbuds", "running shoes", "a standing desk", "a coffee grinder", "hiking backpack",
    "a mechanical keyboard", "yoga mat", "a rice cooker", "noise-cancelling headphones", "a desk lamp",
    "a water bottle", "a phone case", "an electric kettle", "a winter jacket", "a camping tent",
)
_BRANDS = ("Acme", "Northpeak", "Lumo", "Brightline", "Kestrel", "Orbit", "Vale")
_STREETS = ("Elm Street", "Harbour Road", "Maple Avenue", "King's Lane", "Station Road", "Oak Drive",
            "Mill Lane", "Park Terrace")
_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR", "SEK", "MXN")
_SONGS = (
    "Morning Tide", "Paper Lanterns", "City of Glass", "Slow Orbit", "Golden Hour Drive", "Northern Lights",
    "Echoes in the Hall", "Summer Static", "River Song", "Midnight Arcade", "Blue Horizon", "Quiet Engines",
)
_ARTISTS = ("The Lamplighters", "Nova Reyes", "Harbor Lights", "Mina Sato", "The Paper Kites Club",
            "Leo Marsh", "Velvet Compass", "Ada Quinn")
_PLAYLIST_NAMES = ("road trip", "focus", "gym mix", "sunday morning", "party", "study beats", "chill evening")
_INGREDIENTS = ("chicken", "rice", "spinach", "chickpeas", "tomatoes", "eggs", "mushrooms", "lentils",
                "potatoes", "tofu", "salmon", "broccoli", "garlic", "feta", "pasta", "peppers", "onions")
_DIETS = ("vegetarian", "vegan", "gluten-free", "low-carb", "dairy-free")
_RECIPES = ("banana bread", "vegetable curry", "lasagne", "pancakes", "tomato soup", "chili con carne",
            "apple crumble", "fried rice", "shakshuka", "guacamole")
_TEAMS = ("Riverside Rovers", "Northfield United", "Harbor City FC", "Eastbrook Athletic", "Lakeside Wolves",
          "Granite Bay Rangers", "Westmoor Town", "Silver Valley SC")
_LEAGUES = ("Premier Division", "Coastal League", "Northern Cup", "City Basketball League", "Metro Hockey League")
_CHANNELS = ("#general", "#engineering", "#design", "#random", "#support", "#marketing", "#ops")
_MESSAGES = (
    "the build is green again", "standup moves to 10:30 today", "lunch is on me", "I'm running 10 minutes late",
    "the release notes are ready for review", "please update your tickets before Friday",
    "the office will be closed on Monday", "don't forget the demo at 3pm",
)
_REMINDERS = ("call mum", "water the plants", "pay the electricity bill", "take out the recycling",
              "renew my passport", "submit the expense report", "pick up the dry cleaning", "stretch")
_TIMER_LABELS = ("pasta", "tea", "laundry", "pomodoro", "oven", "break")
_TEXTS = (
    "The quick brown fox jumps over the lazy dog", "Hello World from kubetune",
    "Summer Sale: Up to 50% Off Everything", "Notes from the Tuesday planning meeting",
    "A short guide to growing tomatoes", "My First Marathon Experience", "Ten Tips for Better Sleep",
)
_RESTAURANTS = ("La Piazza", "The Green Fig", "Sakura House", "Blue Door Bistro", "Casa Verde", "Spice Route")
_ZONES = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo",
          "Asia/Kolkata", "Australia/Sydney")
_PLACE_KINDS = ("cafe", "pharmacy", "supermarket", "petrol station", "park", "bakery", "library", "gym")
_REPEATS = ("daily", "weekly", "monthly")
_ORDER_REASONS = ("ordered by mistake", "found a better price", "arrived too late", "wrong size")
_CARRIERS = ("DHL", "UPS", "FedEx", "Royal Mail", "USPS")
_MEASURES = ("mean", "median", "max", "min", "stdev")
_LANGUAGES = ("French", "German", "Spanish", "Italian", "Portuguese", "Dutch", "Swedish", "Polish", "Turkish",
              "Korean", "Hindi", "Arabic", "Greek", "Czech")
_FOREIGN_TEXTS = ("Je voudrais un café", "Wo ist der Bahnhof", "Dónde está la biblioteca", "Grazie mille per tutto",
                  "Obrigado pela ajuda", "Ik hou van fietsen", "Tack så mycket", "Dziękuję bardzo",
                  "Bugün hava çok güzel", "Kiitos paljon")
# String parameters whose values look like code or numbers: the call must still quote them.
_EXPRESSIONS = ("x**2 - 3*x + 2", "sin(x) / x", "2*x + 7", "(x + 1) * (x - 1)", "x**3 - x", "exp(-x**2)",
                "3*x**2 + 2*x - 5", "sqrt(x + 4)", "1 / (1 + x**2)", "log(x + 1)", "4*x - 12", "(2*x + 1)**2")
_COINS = ("BTC", "ETH", "SOL", "ADA", "DOGE", "XRP", "DOT", "LTC")
_TICKERS = ("IBM", "ORCL", "INTC", "SAP", "NFLX", "ADBE", "CSCO", "UBER", "SHOP", "SONY")
_MAIL_DOMAINS = ("example.org", "mail.com", "studio.dev", "work.io")
_NEWS_TOPICS = ("electric cars", "the Mars rover", "solar power", "the transfer window", "smartphone launches",
                "interest rates", "ocean cleanup", "space tourism", "vaccine research")
_NOTE_TITLES = ("groceries", "gift ideas", "meeting notes", "packing list", "book quotes", "weekend plans",
                "car maintenance")
_NOTE_BODIES = ("buy oat milk and bread", "ask Maya about the venue", "the wifi password is on the fridge",
                "call the plumber on Thursday", "pack the blue charger", "return the library books by the 12th",
                "try the new bakery on Station Road")
_VIDEOS = ("The Long Voyage", "Ocean Planet episode 3", "Cooking with Rosa", "City Lights at Dawn",
           "Mountain Rescue", "The Last Orchard", "Robots of Tomorrow")
# Same-quantity unit groups, so a conversion always makes sense.
_UNIT_GROUPS = (
    ("kilometers", "miles", "meters", "feet"),
    ("kilograms", "pounds", "grams", "ounces"),
    ("celsius", "fahrenheit", "kelvin"),
    ("liters", "gallons", "milliliters", "cups"),
)


def _pick(pool: Sequence[Any]) -> Callable[[random.Random], Any]:
    return lambda rng: rng.choice(pool)


def _ints(lo: int, hi: int) -> Callable[[random.Random], int]:
    return lambda rng: rng.randint(lo, hi)


def _floats(lo: float, hi: float, digits: int = 1) -> Callable[[random.Random], float]:
    return lambda rng: round(rng.uniform(lo, hi), digits)


def _date(rng: random.Random) -> str:
    return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _time(rng: random.Random) -> str:
    return f"{rng.randint(7, 20):02d}:{rng.choice(('00', '15', '30', '45'))}"


def _sample(pool: Sequence[Any], lo: int, hi: int) -> Callable[[random.Random], list[Any]]:
    return lambda rng: rng.sample(pool, rng.randint(lo, hi))


def _and(items: Sequence[Any]) -> str:
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _g(v: float) -> str:
    return f"{v:g}"


def _money(v: float) -> str:
    return f"{v:.2f}"


def _phone(rng: random.Random) -> str:
    return f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}"


def _account(rng: random.Random) -> str:
    return f"ACC-{rng.randint(10000, 99999)}"


def _email(rng: random.Random) -> str:
    return f"{rng.choice(_NAMES).lower()}.{rng.choice(_SURNAMES).lower()}@{rng.choice(_MAIL_DOMAINS)}"


def _address(rng: random.Random) -> dict[str, Any]:
    return {"street": f"{rng.randint(1, 180)} {rng.choice(_STREETS)}", "city": rng.choice(_CITIES),
            "postcode": f"{rng.randint(10000, 99999)}"}


def _say_address(a: dict[str, Any]) -> str:
    return f"{a['street']}, {a['city']} {a['postcode']}"


def _filters(rng: random.Random) -> dict[str, Any]:
    f: dict[str, Any] = {"max_price": float(rng.choice((20, 50, 80, 100, 150, 300)))}
    if rng.random() < 0.5:
        f["brand"] = rng.choice(_BRANDS)
    return f


def _say_filters(f: dict[str, Any]) -> str:
    text = f"under {f['max_price']:.0f} dollars"
    return text + f" from {f['brand']}" if "brand" in f else text


def _location(rng: random.Random) -> dict[str, Any]:
    return {"lat": round(rng.uniform(-60, 70), 4), "lon": round(rng.uniform(-170, 170), 4)}


def _say_location(loc: dict[str, Any]) -> str:
    return f"latitude {loc['lat']}, longitude {loc['lon']}"


def _contact_fields(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(_NAMES).lower()
    choices = (("phone", _phone(rng)), ("email", f"{name}@example.com"), ("company", rng.choice(_BRANDS) + " Ltd"))
    return dict(rng.sample(choices, rng.randint(1, 2)))


def _say_fields(f: dict[str, Any]) -> str:
    return _and([f"{k} to {v}" for k, v in f.items()])


def _units(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(rng.choice(_UNIT_GROUPS), 2)
    return {"from_unit": a, "to_unit": b}


def _trip(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(_CITIES, 2)
    return {"origin": a, "destination": b}


def _two_cities(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(_CITIES, 2)
    return {"origin_city": a, "destination_city": b}


def _two_currencies(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(_CURRENCIES, 2)
    return {"base": a, "target": b}


def _two_accounts(rng: random.Random) -> dict[str, Any]:
    return {"from_account": _account(rng), "to_account": _account(rng)}


def _two_zones(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(_ZONES, 2)
    return {"from_zone": a, "to_zone": b}


def _date_range(rng: random.Random) -> dict[str, Any]:
    m = rng.randint(1, 11)
    return {"start_date": f"2025-{m:02d}-{rng.randint(1, 14):02d}",
            "end_date": f"2025-{m + rng.randint(0, 1):02d}-{rng.randint(15, 28):02d}"}


def _people(lo: int, hi: int) -> Callable[[random.Random], list[str]]:
    return _sample(_NAMES, lo, hi)


def P(type_: str, description: str, draw: Callable[[random.Random], Any], default: Any = _REQUIRED,
      say: Callable[[Any], str] | None = None) -> _Param:
    return _Param(type_, description, draw, default, say)


# ---------------------------------------------------------------------------------------------------
# The catalogue. Common parameter names appear with more than one type (`location` is a city string for
# hotels and air quality, a lat/lon object for nearby places): a small model that only ever saw one type
# per name writes that type from memory instead of reading the offered schema.

_TOOLS: tuple[_Tool, ...] = (
    _Tool("get_forecast", "Weather forecast for a city over the coming days.", {
        "city": P("str", "City name.", _pick(_CITIES)),
        "days": P("int, optional", "Number of days to forecast.", _ints(1, 10), 3),
        "units": P("str, optional", "'metric' or 'imperial'.", _pick(("metric", "imperial")), "metric"),
    }, (
        "what's the weather going to be like in {city}?",
        "give me the {days}-day forecast for {city}.",
        "will it rain in {city} over the next {days} days?",
        "forecast for {city} in {units} units, please.",
        "I'm travelling to {city} - what's the forecast for the next {days} days in {units} units?",
        "how warm will it be in {city} this week?",
    )),
    _Tool("get_air_quality", "Current air quality index for a place.", {
        "location": P("str", "City name.", _pick(_CITIES)),
    }, (
        "how is the air quality in {location} right now?",
        "is the air in {location} safe for a run today?",
        "check the AQI for {location}.",
    )),
    _Tool("convert_units", "Convert a value between two units of the same quantity.", {
        "value": P("float", "Amount to convert.", _floats(0.5, 500, 1)),
        "from_unit": P("str", "Unit of the value.", _pick(("meters",))),
        "to_unit": P("str", "Target unit.", _pick(("feet",))),
    }, (
        "convert {value} {from_unit} to {to_unit}.",
        "how many {to_unit} is {value} {from_unit}?",
        "what is {value} {from_unit} in {to_unit}?",
        "I need {value} {from_unit} expressed in {to_unit}.",
    ), joint=_units),
    _Tool("solve_quadratic", "Real roots of a*x^2 + b*x + c = 0.", {
        "a": P("float", "Coefficient of x^2.", _floats(1, 9, 0), say=_g),
        "b": P("float", "Coefficient of x.", _floats(-20, 20, 0), say=_g),
        "c": P("float", "Constant term.", _floats(-30, 30, 0), say=_g),
    }, (
        "solve {a}x^2 + ({b})x + ({c}) = 0.",
        "find the roots of the quadratic with a={a}, b={b} and c={c}.",
        "what are the solutions of {a}*x^2 + ({b})*x + ({c}) = 0?",
    )),
    _Tool("summarize_numbers", "Summary statistic of a list of integers.", {
        "numbers": P("List[int]", "The values.", lambda rng: [rng.randint(1, 200) for _ in range(rng.randint(3, 7))],
                     say=_and),
        "measure": P("str, optional", "mean, median, max, min or stdev.", _pick(_MEASURES), "mean"),
    }, (
        "what's the average of {numbers}?",
        "compute the {measure} of {numbers}.",
        "give me the {measure} of these values: {numbers}.",
        "I have the scores {numbers}; what is their {measure}?",
    )),
    _Tool("percentage_of", "What percentage one number is of another.", {
        "part": P("float", "The part.", _floats(1, 400, 1)),
        "whole": P("float", "The whole.", _floats(400, 2000, 0)),
        "decimals": P("int, optional", "Decimal places in the result.", _ints(0, 3), 2),
    }, (
        "what percentage of {whole} is {part}?",
        "{part} out of {whole} - what percent is that?",
        "express {part} as a percentage of {whole}, rounded to {decimals} decimals.",
    )),
    _Tool("check_prime", "Whether an integer is prime.", {
        "number": P("int", "The integer to test.", _ints(2, 100000)),
    }, (
        "is {number} a prime number?",
        "check whether {number} is prime.",
        "can you tell me if {number} is prime?",
    )),
    _Tool("create_event", "Add an event to the calendar.", {
        "title": P("str", "Event title.", _pick(_EVENT_TITLES)),
        "date": P("str", "Date, YYYY-MM-DD.", _date),
        "start_time": P("str", "Start time, HH:MM.", _time),
        "duration_minutes": P("int, optional", "Length in minutes.", _pick((15, 30, 45, 60, 90, 120)), 60),
        "attendees": P("List[str], optional", "People to invite.", _people(1, 3), [], say=_and),
    }, (
        "put a {title} in my calendar on {date} at {start_time}.",
        "schedule {title} for {date} at {start_time} for {duration_minutes} minutes.",
        "add {title} on {date} at {start_time} and invite {attendees}.",
        "create an event called {title} on {date}, starting {start_time}, {duration_minutes} minutes long, with {attendees}.",
    )),
    _Tool("list_events", "List calendar events on a date.", {
        "date": P("str", "Date, YYYY-MM-DD.", _date),
        "calendar": P("str, optional", "Which calendar.", _pick(("work", "personal", "family")), "personal"),
    }, (
        "what do I have on {date}?",
        "show my {calendar} calendar for {date}.",
        "am I free on {date}? List my events.",
    )),
    _Tool("find_free_slot", "Find a meeting slot when all attendees are free.", {
        "attendees": P("List[str]", "People who must attend.", _people(2, 4), say=_and),
        "date": P("str", "Date, YYYY-MM-DD.", _date),
        "duration_minutes": P("int", "Length in minutes.", _pick((15, 30, 45, 60, 90))),
    }, (
        "find a {duration_minutes}-minute slot on {date} when {attendees} are all free.",
        "when can {attendees} meet for {duration_minutes} minutes on {date}?",
    )),
    _Tool("read_file", "Read the first lines of a text file.", {
        "path": P("str", "File path.", lambda rng: f"{rng.choice(_FOLDERS)}/{rng.choice(_FILES)}"),
        "max_lines": P("int, optional", "Lines to return.", _pick((10, 20, 50, 200)), 100),
    }, (
        "show me what's in {path}.",
        "open {path} and give me the first {max_lines} lines.",
        "read the file {path}.",
    )),
    _Tool("search_files", "Find files matching a glob pattern.", {
        "directory": P("str", "Folder to search.", _pick(_FOLDERS)),
        "pattern": P("str", "Glob pattern.", _pick(_PATTERNS)),
        "recursive": P("bool, optional", "Search subfolders.", lambda rng: False, True,
                       say=lambda v: "subfolders" if v else "the top folder only"),
    }, (
        "find all {pattern} files in {directory}.",
        "list {pattern} under {directory}, {recursive}.",
        "which files in {directory} match {pattern}?",
    )),
    _Tool("compress_folder", "Create an archive of a folder.", {
        "path": P("str", "Folder to archive.", _pick(_FOLDERS)),
        "format": P("str, optional", "zip, tar.gz or 7z.", _pick(("tar.gz", "7z", "zip")), "zip"),
    }, (
        "compress {path} into an archive.",
        "make a {format} archive of {path}.",
        "zip up the folder {path}.",
    )),
    _Tool("search_products", "Search the shop catalogue.", {
        "query": P("str", "What to look for.", _pick(_PRODUCTS)),
        "filters": P("Dict[str, Any], optional", "Filters such as max_price and brand.", _filters, {},
                     say=_say_filters),
        "limit": P("int, optional", "Maximum results.", _pick((3, 5, 20)), 10),
    }, (
        "look for {query} in the shop.",
        "find me {query} {filters}.",
        "show the top {limit} results for {query}.",
        "search for {query} {filters} and give me {limit} options.",
    )),
    _Tool("place_order", "Order a product for delivery.", {
        "product_id": P("str", "Catalogue id.", lambda rng: f"SKU-{rng.randint(1000, 9999)}"),
        "quantity": P("int", "How many.", _ints(1, 6)),
        "shipping_address": P("Dict[str, Any]", "street, city and postcode.", _address, say=_say_address),
    }, (
        "order {quantity} of {product_id} and ship them to {shipping_address}.",
        "please buy {quantity} x {product_id}, delivery address {shipping_address}.",
        "send {quantity} units of product {product_id} to {shipping_address}.",
    )),
    _Tool("cancel_order", "Cancel an order that has not shipped.", {
        "order_id": P("str", "Order number.", lambda rng: f"ORD-{rng.randint(100000, 999999)}"),
        "reason": P("str, optional", "Why it is cancelled.", _pick(_ORDER_REASONS), ""),
    }, (
        "cancel order {order_id}.",
        "please cancel {order_id}, the reason is: {reason}.",
        "I want to cancel my order {order_id} - reason: {reason}.",
    )),
    _Tool("track_package", "Delivery status of a parcel.", {
        "tracking_number": P("str", "Tracking number.", lambda rng: f"TRK{rng.randint(10**8, 10**9 - 1)}"),
        "carrier": P("str, optional", "Carrier name.", _pick(_CARRIERS), "auto"),
    }, (
        "where is my parcel {tracking_number}?",
        "track {tracking_number} with {carrier}.",
        "has package {tracking_number} been delivered yet?",
    )),
    _Tool("find_hotels", "Search hotels in a city.", {
        "location": P("str", "City or area.", _pick(_CITIES)),
        "check_in": P("str", "Check-in date, YYYY-MM-DD.", _date),
        "nights": P("int", "Number of nights.", _ints(1, 10)),
        "max_price": P("float, optional", "Max price per night.", _pick((80.0, 120.0, 150.0, 250.0)), None),
    }, (
        "find a hotel in {location} from {check_in} for {nights} nights.",
        "I need somewhere to stay in {location}, {nights} nights starting {check_in}, under {max_price} a night.",
        "hotels in {location} checking in {check_in}, {nights} nights?",
    )),
    _Tool("search_train_times", "Train departures between two stations.", {
        "origin": P("str", "Departure city.", _pick(_CITIES)),
        "destination": P("str", "Arrival city.", _pick(_CITIES)),
        "date": P("str", "Travel date, YYYY-MM-DD.", _date),
        "first_class": P("bool, optional", "First class only.", lambda rng: True, False),
    }, (
        "trains from {origin} to {destination} on {date}?",
        "when are the trains from {origin} to {destination} on {date}?",
        "find first class trains from {origin} to {destination} on {date}.{first_class}",
    ), joint=_trip),
    _Tool("get_exchange_rate", "Exchange rate between two currencies.", {
        "base": P("str", "ISO code to convert from.", _pick(_CURRENCIES)),
        "target": P("str", "ISO code to convert to.", _pick(_CURRENCIES)),
    }, (
        "what's the {base} to {target} rate?",
        "how much is one {base} in {target} today?",
        "exchange rate from {base} to {target}, please.",
    ), joint=_two_currencies),
    _Tool("get_account_balance", "Balance of a bank account.", {
        "account_id": P("str", "Account id.", _account),
    }, (
        "what's the balance on {account_id}?",
        "how much money is in account {account_id}?",
    )),
    _Tool("transfer_funds", "Move money between accounts.", {
        "from_account": P("str", "Source account.", _account),
        "to_account": P("str", "Destination account.", _account),
        "amount": P("float", "Amount.", _floats(5, 2000, 2), say=_money),
        "memo": P("str, optional", "Note for the payment.", _pick(("rent", "dinner", "savings", "gift")), ""),
    }, (
        "transfer {amount} from {from_account} to {to_account}.",
        "move {amount} from {from_account} into {to_account} with the note {memo}.",
        "send {amount} from account {from_account} to {to_account}.",
    ), joint=_two_accounts),
    _Tool("list_transactions", "Transactions of an account in a date range.", {
        "account_id": P("str", "Account id.", _account),
        "start_date": P("str", "From, YYYY-MM-DD.", _date),
        "end_date": P("str", "To, YYYY-MM-DD.", _date),
        "min_amount": P("float, optional", "Only amounts at least this.", _pick((50.0, 100.0, 500.0)), 0.0),
    }, (
        "show transactions on {account_id} between {start_date} and {end_date}.",
        "list payments over {min_amount} on {account_id} from {start_date} to {end_date}.",
    ), joint=_date_range),
    _Tool("send_sms", "Send a text message.", {
        "phone_number": P("str", "Recipient number.", _phone),
        "message": P("str", "Text to send.", _pick(_MESSAGES)),
    }, (
        "text {phone_number}: {message}.",
        "send an SMS to {phone_number} saying {message}.",
    )),
    _Tool("post_team_message", "Post to a team chat channel.", {
        "channel": P("str", "Channel name.", _pick(_CHANNELS)),
        "text": P("str", "Message text.", _pick(_MESSAGES)),
        "mentions": P("List[str], optional", "People to mention.", _people(1, 2), [], say=_and),
    }, (
        "post in {channel} that {text}.",
        "tell {channel} {text}, and mention {mentions}.",
        "write to {channel}: {text}.",
    )),
    _Tool("play_song", "Play a song.", {
        "title": P("str", "Song title.", _pick(_SONGS)),
        "artist": P("str, optional", "Artist.", _pick(_ARTISTS), ""),
        "shuffle": P("bool, optional", "Shuffle afterwards.", lambda rng: True, False),
    }, (
        "play {title}.",
        "put on {title} by {artist}.",
        "play {title} and then shuffle.{shuffle}",
    )),
    _Tool("create_playlist", "Make a playlist from songs.", {
        "name": P("str", "Playlist name.", _pick(_PLAYLIST_NAMES)),
        "songs": P("List[str]", "Song titles.", _sample(_SONGS, 2, 4), say=_and),
        "public": P("bool, optional", "Visible to others.", lambda rng: True, False),
    }, (
        "make a playlist called {name} with {songs}.",
        "create a public playlist named {name} containing {songs}.{public}",
    )),
    _Tool("find_recipes", "Recipes that use given ingredients.", {
        "ingredients": P("List[str]", "Ingredients on hand.", _sample(_INGREDIENTS, 1, 3), say=_and),
        "max_minutes": P("int, optional", "Max cooking time.", _pick((15, 20, 30, 45)), 60),
        "diet": P("str, optional", "Dietary need.", _pick(_DIETS), ""),
    }, (
        "what can I cook with {ingredients}?",
        "find a recipe with {ingredients} that takes under {max_minutes} minutes.",
        "I need a {diet} recipe using {ingredients}.",
    )),
    _Tool("scale_recipe", "Rescale a recipe's quantities.", {
        "recipe_name": P("str", "Recipe.", _pick(_RECIPES)),
        "servings": P("int", "Servings wanted.", _ints(2, 12)),
    }, (
        "scale my {recipe_name} recipe to {servings} servings.",
        "I'm cooking {recipe_name} for {servings} people, adjust the quantities.",
    )),
    _Tool("get_match_result", "Latest or dated result of a team's match.", {
        "team": P("str", "Team name.", _pick(_TEAMS)),
        "date": P("str, optional", "Match date, YYYY-MM-DD.", _date, ""),
    }, (
        "how did {team} do in their last game?",
        "what was the score of the {team} match on {date}?",
        "did {team} win yesterday?",
    )),
    _Tool("league_standings", "League table for a season.", {
        "league": P("str", "League name.", _pick(_LEAGUES)),
        "season": P("int, optional", "Season year.", _pick((2021, 2022, 2023)), 2024),
    }, (
        "show the {league} table.",
        "who topped the {league} in {season}?",
        "standings of the {league}, season {season}.",
    )),
    _Tool("set_reminder", "Create a reminder.", {
        "text": P("str", "What to remember.", _pick(_REMINDERS)),
        "time": P("str", "Time, HH:MM.", _time),
        "date": P("str, optional", "Date, YYYY-MM-DD; today if empty.", _date, ""),
        "repeat": P("str, optional", "never, daily, weekly or monthly.", _pick(_REPEATS), "never"),
    }, (
        "remind me to {text} at {time}.",
        "set a reminder for {date} at {time} to {text}.",
        "remind me {repeat} at {time} to {text}.",
    )),
    _Tool("start_timer", "Start a countdown timer.", {
        "minutes": P("int", "Duration in minutes.", _ints(1, 90)),
        "label": P("str, optional", "Label.", _pick(_TIMER_LABELS), ""),
    }, (
        "set a timer for {minutes} minutes.",
        "start a {minutes} minute {label} timer.",
        "countdown of {minutes} minutes, please.",
    )),
    _Tool("count_words", "Count the words in a text.", {
        "text": P("str", "The text.", _pick(_TEXTS)),
    }, (
        "how many words are in \"{text}\"?",
        "count the words in this: {text}",
    )),
    _Tool("slugify_text", "Turn a title into a URL slug.", {
        "text": P("str", "The title.", _pick(_TEXTS)),
        "separator": P("str, optional", "Word separator.", _pick(("_", ".")), "-"),
    }, (
        "make a URL slug from \"{text}\".",
        "slugify \"{text}\" using \"{separator}\" between words.",
    )),
    _Tool("geo_distance", "Straight-line distance between two cities.", {
        "origin_city": P("str", "First city.", _pick(_CITIES)),
        "destination_city": P("str", "Second city.", _pick(_CITIES)),
        "unit": P("str, optional", "km or miles.", lambda rng: "miles", "km"),
    }, (
        "how far is {origin_city} from {destination_city}?",
        "distance between {origin_city} and {destination_city} in {unit}?",
        "how many kilometres from {origin_city} to {destination_city}?",
    ), joint=_two_cities),
    _Tool("find_nearby_places", "Places of a kind near coordinates.", {
        "location": P("Dict[str, Any]", "Point with lat and lon.", _location, say=_say_location),
        "category": P("str", "Kind of place.", _pick(_PLACE_KINDS)),
        "radius_km": P("float, optional", "Search radius.", _pick((0.5, 2.0, 5.0)), 1.0),
    }, (
        "find a {category} near {location}.",
        "any {category} within {radius_km} km of {location}?",
    )),
    _Tool("update_contact", "Change fields of a saved contact.", {
        "contact_name": P("str", "Contact's full name.", lambda rng: f"{rng.choice(_NAMES)} {rng.choice(_SURNAMES)}"),
        "fields": P("Dict[str, Any]", "Fields to change.", _contact_fields, say=_say_fields),
    }, (
        "update {contact_name}: set {fields}.",
        "change {contact_name}'s {fields}.",
    )),
    _Tool("generate_password", "Generate a random password.", {
        "length": P("int", "Number of characters.", _pick((12, 16, 20, 24, 32))),
        "include_symbols": P("bool, optional", "Use symbols.", lambda rng: False, True,
                             say=lambda v: "with symbols" if v else "without symbols"),
    }, (
        "generate a {length}-character password.",
        "make me a password of length {length}, {include_symbols}.",
    )),
    _Tool("convert_timezone", "Convert a clock time between time zones.", {
        "time": P("str", "Time, HH:MM.", _time),
        "from_zone": P("str", "IANA zone of the time.", _pick(_ZONES)),
        "to_zone": P("str", "IANA zone wanted.", _pick(_ZONES)),
    }, (
        "what time is {time} {from_zone} in {to_zone}?",
        "convert {time} from {from_zone} to {to_zone}.",
    ), joint=_two_zones),
    _Tool("days_between", "Number of days between two dates.", {
        "start_date": P("str", "First date, YYYY-MM-DD.", _date),
        "end_date": P("str", "Second date, YYYY-MM-DD.", _date),
    }, (
        "how many days from {start_date} to {end_date}?",
        "count the days between {start_date} and {end_date}.",
    ), joint=_date_range),
    _Tool("reserve_table", "Reserve a restaurant table.", {
        "restaurant": P("str", "Restaurant name.", _pick(_RESTAURANTS)),
        "date": P("str", "Date, YYYY-MM-DD.", _date),
        "time": P("str", "Time, HH:MM.", _time),
        "party_size": P("int", "Number of guests.", _ints(1, 10)),
    }, (
        "book a table for {party_size} at {restaurant} on {date} at {time}.",
        "reserve {restaurant} for {party_size} people, {date} {time}.",
    )),
    _Tool("detect_language", "Identify the language a text is written in.", {
        "text": P("str", "The text.", _pick(_FOREIGN_TEXTS)),
    }, (
        "what language is \"{text}\"?",
        "which language is this: {text}",
        "detect the language of \"{text}\".",
    )),
    _Tool("search_news", "Latest news articles on a topic.", {
        "topic": P("str", "What the news is about.", _pick(_NEWS_TOPICS)),
        "language": P("str, optional", "Language of the articles.", _pick(_LANGUAGES), "English"),
        "max_results": P("int, optional", "Number of articles.", _pick((3, 5, 8)), 10),
    }, (
        "any news about {topic}?",
        "find the latest {max_results} articles on {topic}.",
        "show me news on {topic} in {language}.",
        "what's new with {topic}? Articles in {language}, please.",
    )),
    _Tool("plot_function", "Plot y = f(x) over an interval.", {
        "expression": P("str", "f(x) in Python syntax.", _pick(_EXPRESSIONS)),
        "x_min": P("int", "Left end of the interval.", _ints(-10, 0)),
        "x_max": P("int", "Right end of the interval.", _ints(1, 10)),
    }, (
        "plot {expression} from {x_min} to {x_max}.",
        "draw the graph of y = {expression} for x between {x_min} and {x_max}.",
        "can you graph {expression} on [{x_min}, {x_max}]?",
    )),
    _Tool("simplify_expression", "Simplify an algebraic expression.", {
        "expression": P("str", "The expression in Python syntax.", _pick(_EXPRESSIONS)),
    }, (
        "simplify {expression}.",
        "can you simplify the expression {expression}?",
        "what is {expression} in its simplest form?",
    )),
    _Tool("get_crypto_price", "Current price of a cryptocurrency.", {
        "coin": P("str", "Coin symbol, e.g. 'BTC'.", _pick(_COINS)),
        "currency": P("str, optional", "ISO code of the price currency.", _pick(_CURRENCIES), "USD"),
    }, (
        "what's {coin} trading at?",
        "price of {coin} in {currency}?",
        "how much is one {coin} worth right now?",
    )),
    _Tool("get_company_profile", "Company facts for a stock ticker.", {
        "ticker": P("str", "Ticker symbol.", _pick(_TICKERS)),
    }, (
        "tell me about the company with ticker {ticker}.",
        "which company trades as {ticker}?",
        "company profile for {ticker}, please.",
    )),
    _Tool("create_note", "Save a note.", {
        "title": P("str", "Note title.", _pick(_NOTE_TITLES)),
        "body": P("str", "Note text.", _pick(_NOTE_BODIES)),
        "pinned": P("bool, optional", "Keep it at the top.", lambda rng: True, False),
    }, (
        "make a note titled '{title}' that says '{body}'.",
        "save a note called {title} with the text: {body}.",
        "new note, title {title}, body: {body}.",
        "jot down '{body}' under the title '{title}' and pin it.{pinned}",
    )),
    _Tool("set_subtitles", "Turn on subtitles in a language for a video.", {
        "video_title": P("str", "Title of the video.", _pick(_VIDEOS)),
        "language": P("str", "Subtitle language.", _pick(_LANGUAGES)),
    }, (
        "turn on {language} subtitles for {video_title}.",
        "switch the subtitles of {video_title} to {language}.",
        "I want to watch {video_title} with subtitles in {language}.",
    )),
    _Tool("share_file", "Share a file with someone by email.", {
        "path": P("str", "File path.", lambda rng: f"{rng.choice(_FOLDERS)}/{rng.choice(_FILES)}"),
        "email": P("str", "Email address of the person.", _email),
        "permission": P("str, optional", "'view' or 'edit'.", lambda rng: "edit", "view"),
    }, (
        "share {path} with {email}.",
        "give {email} {permission} access to {path}.",
        "send {email} a link to {path} with {permission} rights.",
    )),
)

# A flag-like optional (e.g. shuffle) is named by a template with an empty placeholder at the end.
_SILENT_BOOLS = {("search_train_times", "first_class"), ("play_song", "shuffle"), ("create_playlist", "public"),
                 ("create_note", "pinned")}


@cache
def _fields(template: str) -> frozenset[str]:
    return frozenset(f for _, f, _, _ in string.Formatter().parse(template) if f)


_BY_NAME = {t.name: t for t in _TOOLS}
_SCHEMAS = {t.name: t.schema() for t in _TOOLS}
_NAMES_SORTED = tuple(t.name for t in _TOOLS)

# ---------------------------------------------------------------------------------------------------
# Spellings. Spelling 0 is the catalogue's; a row draws one spelling for all the tools it offers, so
# rows of one spelling can still share a conversation (conversations need identical schemas).

_VERBS = {"get": "fetch", "convert": "transform", "solve": "compute", "summarize": "describe", "check": "verify",
          "create": "add", "list": "show", "find": "lookup", "read": "open", "search": "lookup",
          "compress": "archive", "place": "submit", "cancel": "void", "track": "trace", "transfer": "move",
          "send": "dispatch", "post": "publish", "play": "stream", "scale": "resize", "set": "add",
          "start": "begin", "count": "tally", "update": "edit", "generate": "make", "reserve": "book"}
SPELLINGS = 4  # catalogue, camelCase, other verb, both


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _respell(snake: str, spelling: int, is_name: bool) -> str:
    if is_name and spelling in (2, 3):
        verb, _, rest = snake.partition("_")
        snake = f"{_VERBS.get(verb, verb)}_{rest}" if rest else snake
    return _camel(snake) if spelling in (1, 3) else snake


@cache
def _spelled(name: str, spelling: int) -> tuple[str, dict[str, str], str]:
    """A catalogue tool in one spelling: its name, catalogue parameter -> spelled parameter, schema JSON."""
    schema = _SCHEMAS[name]
    keys = {k: _respell(k, spelling, is_name=False) for k in schema["parameters"]}
    spelled = {**schema, "name": _respell(name, spelling, is_name=True),
               "parameters": {keys[k]: v for k, v in schema["parameters"].items()}}
    return spelled["name"], keys, json.dumps(spelled, ensure_ascii=False)


def tool_catalogue() -> list[dict[str, Any]]:
    """Every tool schema, xlam style: `{name, description, parameters: {p: {description, type, default?}}}`."""
    return [json.loads(_spelled(name, 0)[2]) for name in _NAMES_SORTED]


def _say(tool: _Tool, key: str, value: Any) -> str:
    if (tool.name, key) in _SILENT_BOOLS:
        return ""
    p = tool.params[key]
    if p.say is not None:
        return p.say(value)
    return str(value)


def _call(tool: _Tool, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One query sentence (lower-case first letter) and the call that answers it."""
    template = rng.choice(tool.templates)
    named = _fields(template)
    values = {k: p.draw(rng) for k, p in tool.params.items() if k in named or not p.optional}
    if tool.joint is not None:
        values.update(tool.joint(rng))
    text = template.format(**{k: _say(tool, k, values[k]) for k in named})
    return text, _arguments(tool, named, values)


def _arguments(tool: _Tool, named: frozenset[str], values: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments: the required parameters and the optional ones the query names."""
    return {k: values[k] for k in tool.params if k in named or not tool.params[k].optional}


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


_JOINERS = ("{a} Also, {b}", "{a} And {b}", "{a} Then {b}", "{a} After that, {b}", "{a} Next, {b}")
# Requests joined inside one sentence ("check the weather in Madrid and get the price of TSLA").
_IN_SENTENCE = ("{a} and {b}", "{a}, and {b}", "{a} and also {b}", "{a}, then {b}")
_PREFIXES = ("", "", "", "", "Hey, ", "Hi! ", "Quick one: ", "Could you help? ", "Please help: ")


def _listed(tool: _Tool, rng: random.Random, n: int) -> tuple[str, list[dict[str, Any]]] | None:
    """One sentence asking for `n` calls of `tool` that differ in one listed value ("... in Oslo, Rome
    and Lima"), or None when the drawn template has no short plain value to list."""
    if tool.joint is not None:
        return None
    template = rng.choice(tool.templates)
    named = _fields(template)
    values = {k: p.draw(rng) for k, p in tool.params.items() if k in named or not p.optional}
    keys = [k for k in sorted(named) if tool.params[k].say is None and (tool.name, k) not in _SILENT_BOOLS
            and isinstance(values[k], str) and len(values[k].split()) <= 3]
    if not keys:
        return None
    key = rng.choice(keys)
    listed = [values[key]]
    for _ in range(8 * n):
        if len(listed) == n:
            break
        value = tool.params[key].draw(rng)
        if value not in listed and len(value.split()) <= 3:
            listed.append(value)
    if len(listed) < n:
        return None
    text = template.format(**{k: _and(listed) if k == key else _say(tool, k, values[k]) for k in named})
    args = _arguments(tool, named, values)
    return text, [{**args, key: value} for value in listed]


def _tool_row(rng: random.Random, row_id: int) -> dict[str, Any]:
    listed = None
    if rng.random() >= PARALLEL_SHARE:
        plan = [rng.choice(_TOOLS)]
    elif rng.random() < 0.5:  # the same tool several times with different arguments
        plan = [rng.choice(_TOOLS)] * rng.choice((2, 2, 2, 3))
        if LISTED_SHARE and rng.random() < LISTED_SHARE:  # 0 draws nothing: earlier data sets replay
            listed = _listed(plan[0], rng, len(plan))
    else:  # several different tools, one call each
        plan = rng.sample(_TOOLS, rng.choice((2, 2, 2, 3)))
    if listed is not None:
        text, arguments = listed
        calls = [(plan[0].name, text, a) for a in arguments]
    else:
        calls = [(tool.name, *_call(tool, rng)) for tool in plan]
        text = calls[0][1]
        in_sentence = IN_SENTENCE_SHARE and rng.random() < IN_SENTENCE_SHARE  # 0 draws nothing: replays
        for _, q, _ in calls[1:]:
            if in_sentence:
                text = rng.choice(_IN_SENTENCE).format(a=text.rstrip(".?!"), b=q)
            else:
                text = rng.choice(_JOINERS).format(a=text, b=q)
    needed = list(dict.fromkeys(tool.name for tool in plan))
    weights = DISTRACTORS_SINGLE if len(needed) == 1 else DISTRACTORS_SEVERAL
    extra = min(rng.choices(range(len(weights)), weights=weights)[0], MAX_OFFERED - len(needed))
    offered = needed + [n for n in rng.sample(_NAMES_SORTED, extra + len(needed)) if n not in needed][:extra]
    rng.shuffle(offered)
    prefix = rng.choice(_PREFIXES)
    spelling = rng.randrange(1, SPELLINGS) if RESPELLED_SHARE and rng.random() < RESPELLED_SHARE else 0
    answers = []
    for name, _, args in calls:
        spelled, keys, _ = _spelled(name, spelling)
        answers.append({"name": spelled, "arguments": {keys[k]: v for k, v in args.items()}})
    return {
        "id": row_id,
        "query": prefix + (text if prefix.endswith(", ") else _sentence(text)),
        "tools": "[" + ", ".join(_spelled(n, spelling)[2] for n in offered) + "]",
        "answers": json.dumps(answers, ensure_ascii=False),
    }


def xlam_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` tool-calling rows in Salesforce xlam-function-calling-60k's format (JSON strings for
    `tools` and `answers`), about `PARALLEL_SHARE` of them with several calls."""
    rng = random.Random(seed)
    return [_tool_row(rng, i) for i in range(n)]


# ---------------------------------------------------------------------------------------------------
# Chat rows. Nothing here is a request one of the catalogue's tools could serve (no weather, sums,
# conversions, bookings...), so `prepare` can pair these with any tools as no-call examples.

_FACTS: tuple[tuple[str, str], ...] = (
    ("why is the sky blue?", "Sunlight is scattered by the molecules in the air, and short blue wavelengths are scattered much more than red ones, so blue light reaches your eyes from every part of the sky."),
    ("what is photosynthesis?", "Photosynthesis is how plants, algae and some bacteria turn light, water and carbon dioxide into sugar, releasing oxygen as a by-product."),
    ("how do vaccines work?", "A vaccine shows your immune system a harmless piece or copy of a germ, so it learns to recognise it and can respond quickly if the real germ ever turns up."),
    ("what is DNA?", "DNA is the molecule that carries genetic instructions in living things. It is a double helix made of four bases - A, T, C and G - whose order encodes genes."),
    ("why do we have seasons?", "Earth's axis is tilted about 23.5 degrees, so each hemisphere gets more direct sunlight for part of the year (summer) and less for the other part (winter)."),
    ("what is gravity?", "Gravity is the attraction between masses. Newton described it as a force; Einstein's general relativity explains it as the curving of spacetime by mass and energy."),
    ("what is an atom made of?", "An atom has a tiny nucleus of protons and neutrons, surrounded by electrons. The number of protons decides which element it is."),
    ("how does a rainbow form?", "Sunlight enters raindrops, bends, reflects off the back of the drop and bends again on the way out. Each colour bends by a slightly different amount, so the light spreads into a band of colours."),
    ("what causes tides?", "Tides are caused mainly by the Moon's gravity pulling on the oceans, with a smaller contribution from the Sun. Most coasts see two high tides a day."),
    ("what is the difference between weather and climate?", "Weather is what the atmosphere is doing over hours or days; climate is the average pattern of weather in a place over decades."),
    ("why do leaves change colour in autumn?", "As days shorten, trees stop making green chlorophyll. It breaks down and reveals yellow and orange pigments, and some trees also make red ones."),
    ("what is a black hole?", "A black hole is a region where matter is packed so densely that gravity stops anything, even light, from escaping once it crosses the event horizon."),
    ("how do bees make honey?", "Bees collect nectar, store it in a honey stomach where enzymes start breaking down the sugars, then deposit it in wax cells and fan it with their wings until enough water evaporates."),
    ("what is the speed of light?", "Light travels at about 299,792 kilometres per second in a vacuum - fast enough to go around Earth about seven and a half times in one second."),
    ("why is the ocean salty?", "Rain slowly dissolves minerals from rocks, and rivers carry them to the sea. When seawater evaporates the salts stay behind, so they have built up over millions of years."),
    ("what is an ecosystem?", "An ecosystem is a community of living things together with their physical surroundings - soil, water, air - all interacting as one system."),
    ("what does a white blood cell do?", "White blood cells are part of the immune system. They find and destroy germs, clear away damaged cells and help remember past infections."),
    ("what is evaporation?", "Evaporation is when a liquid turns into a gas at its surface, like a puddle slowly drying in the sun."),
    ("how does a compass work?", "A compass needle is a small magnet. It lines up with Earth's magnetic field, so one end points roughly towards magnetic north."),
    ("what is the largest planet in our solar system?", "Jupiter is the largest planet. It is a gas giant more than eleven times wider than Earth."),
    ("what is a noun?", "A noun is a word that names a person, place, thing or idea - for example 'teacher', 'London', 'chair' or 'freedom'."),
    ("what is the difference between 'affect' and 'effect'?", "Usually 'affect' is a verb (the rain affected the match) and 'effect' is a noun (the rain had an effect on the match)."),
    ("when should I use a semicolon?", "Use a semicolon to join two closely related sentences that could stand alone, for example: 'It was late; we went home.' It can also separate items in a complicated list."),
    ("what is a metaphor?", "A metaphor describes something by saying it is something else, such as 'time is a thief'. Unlike a simile, it does not use 'like' or 'as'."),
    ("what is the difference between 'its' and 'it's'?", "'It's' is short for 'it is' or 'it has'; 'its' shows possession, as in 'the dog wagged its tail'."),
    ("what is a haiku?", "A haiku is a short Japanese poem form of three lines, traditionally with five, seven and five syllables, often about nature or a moment in time."),
    ("what does 'ubiquitous' mean?", "'Ubiquitous' means found everywhere. For example: 'Smartphones have become ubiquitous.'"),
    ("what is an adverb?", "An adverb describes a verb, adjective or another adverb, often saying how, when or where - for example 'quickly', 'yesterday' or 'very'."),
    ("what is the passive voice?", "In the passive voice the subject receives the action: 'The cake was eaten' instead of the active 'Sam ate the cake'."),
    ("what's the difference between 'fewer' and 'less'?", "Use 'fewer' for things you can count (fewer apples) and 'less' for amounts you cannot (less water)."),
    ("what is an oxymoron?", "An oxymoron puts two contradictory words together for effect, such as 'deafening silence' or 'bittersweet'."),
    ("who built the pyramids of Giza?", "They were built by ancient Egyptian workers, around 4,500 years ago, as tombs for pharaohs such as Khufu. Evidence suggests paid labourers, not slaves, did most of the work."),
    ("what was the Renaissance?", "The Renaissance was a period of renewed interest in art, science and classical learning in Europe, roughly from the 14th to the 17th century, starting in Italy."),
    ("what was the Industrial Revolution?", "It was the shift from hand production to machines and factories, starting in Britain in the late 18th century and driven by steam power, coal and iron."),
    ("who was Ada Lovelace?", "Ada Lovelace was a 19th-century English mathematician who wrote what is often called the first computer program, for Charles Babbage's proposed Analytical Engine."),
    ("why was the printing press important?", "Gutenberg's printing press, around 1440, made books far cheaper and faster to produce, which spread literacy, science and new ideas across Europe."),
    ("what was the Silk Road?", "The Silk Road was a network of trade routes linking China with Central Asia, the Middle East and Europe, carrying silk, spices, ideas and religions for centuries."),
    ("when did humans first land on the Moon?", "Apollo 11 landed on the Moon on 20 July 1969, and Neil Armstrong and Buzz Aldrin walked on its surface."),
    ("what was the Roman Empire?", "The Roman Empire was the state ruled from Rome that, at its height in the 2nd century, controlled lands around the whole Mediterranean, from Britain to Egypt."),
    ("who invented the telephone?", "Alexander Graham Bell received the first patent for a telephone in 1876, though other inventors such as Elisha Gray worked on similar ideas."),
    ("what was the Magna Carta?", "The Magna Carta was a charter agreed by King John of England in 1215. It limited the king's power and became a symbol of the rule of law."),
    ("why do you rest meat after cooking?", "Resting lets the juices settle back through the meat instead of running out when you cut it, so it stays moister."),
    ("what does it mean to blanch vegetables?", "Blanching means boiling vegetables briefly and then plunging them into cold water. It sets their colour and stops the cooking."),
    ("why does bread rise?", "Yeast eats sugars in the dough and releases carbon dioxide. Gluten traps the gas in tiny bubbles, which makes the dough expand."),
    ("how do I keep pasta from sticking?", "Use plenty of boiling, well-salted water, stir in the first minute or two, and drain it as soon as it is done. Oil in the water is not needed."),
    ("what is the difference between baking soda and baking powder?", "Baking soda is pure sodium bicarbonate and needs an acid in the recipe to react. Baking powder already contains the acid, so it works on its own."),
    ("how can I tell if an egg is fresh?", "Put it in a bowl of water: a fresh egg sinks and lies flat, an older one tilts or stands up, and an egg that floats is best thrown away."),
    ("what does 'al dente' mean?", "'Al dente' is Italian for 'to the tooth': pasta cooked until tender but still slightly firm when you bite it."),
    ("why do onions make you cry?", "Cutting an onion releases a compound that turns into an irritating gas; when it reaches your eyes, they make tears to wash it away."),
    ("what is umami?", "Umami is the savoury taste, one of the five basic tastes. It comes from glutamates found in foods like tomatoes, cheese, mushrooms and soy sauce."),
    ("how do I make rice fluffy?", "Rinse the rice until the water runs clear, use the right amount of water, cook it covered on low heat, then let it rest a few minutes before fluffing with a fork."),
    ("what is a variable in programming?", "A variable is a named place to store a value so your program can use and change it later, like 'count = 0'."),
    ("what is the difference between a list and a tuple in Python?", "A list is mutable - you can add, remove or change items. A tuple is immutable once created, which makes it hashable and handy for fixed records."),
    ("what is recursion?", "Recursion is when a function calls itself on a smaller version of the problem, with a base case that stops it - for example computing a factorial."),
    ("what does an API do?", "An API (application programming interface) is a defined way for programs to talk to each other, listing the requests you can make and the answers you get back."),
    ("what is git used for?", "Git is a version control system: it records changes to files over time, lets you go back to earlier versions and helps people work on the same code together."),
    ("what is a for loop?", "A for loop repeats a block of code once for each item in a sequence, for example every element of a list."),
    ("how do I reverse a list in Python?", "Use 'my_list.reverse()' to reverse it in place, or 'my_list[::-1]' to get a reversed copy."),
    ("what is the difference between == and is in Python?", "'==' checks whether two values are equal; 'is' checks whether two names refer to the very same object."),
    ("what is JSON?", "JSON is a lightweight text format for data, built from objects (key-value pairs), arrays, strings, numbers, booleans and null. Almost every language can read and write it."),
    ("what is a bug in software?", "A bug is a mistake in a program that makes it behave in a way its authors did not intend, such as crashing or giving a wrong result."),
    ("what is an algorithm?", "An algorithm is a precise, step-by-step procedure for solving a problem, like a recipe a computer can follow."),
    ("what does HTML stand for?", "HTML stands for HyperText Markup Language, the language used to structure content on web pages."),
    ("what is a function in programming?", "A function is a named, reusable block of code that takes inputs (arguments), does some work and can return a result."),
    ("what is object-oriented programming?", "Object-oriented programming organises code around objects that bundle data with the methods that act on it, using ideas like classes, encapsulation and inheritance."),
    ("how can I sleep better?", "Keep a regular sleep schedule, avoid screens and caffeine late in the day, keep your bedroom cool and dark, and get some daylight and exercise during the day."),
    ("how do I stay focused while studying?", "Work in short blocks (say 25 minutes) with brief breaks, put your phone in another room, and decide before you start exactly what you want to finish."),
    ("how can I start running?", "Start slowly with walk-run intervals three times a week, increase your total time gradually, and wear comfortable shoes. Rest days matter as much as runs."),
    ("how do I prepare for a job interview?", "Research the company, match your experience to the job description, prepare short stories about past achievements, and have a couple of questions ready to ask them."),
    ("how can I save money on groceries?", "Plan meals for the week, shop with a list, buy seasonal produce, compare unit prices and cook larger batches to use leftovers."),
    ("how do I make a good first impression?", "Be on time, smile, make eye contact, listen carefully and ask questions about the other person."),
    ("how can I learn a new language faster?", "Practise a little every day, learn the most common words first, listen to native speakers, and start speaking early even if you make mistakes."),
    ("how do I deal with stress at work?", "Break big tasks into small steps, take short breaks, talk to your manager about priorities, and protect time for sleep and exercise. If it persists, talking to a professional helps."),
    ("what are some tips for public speaking?", "Know your opening lines well, practise out loud, speak slower than feels natural, and focus on a few friendly faces in the audience."),
    ("how can I drink more water?", "Keep a bottle with you, drink a glass with every meal, and add a slice of lemon or cucumber if you find plain water boring."),
    ("how do I keep houseplants alive?", "Check what light each plant likes, water only when the top of the soil is dry, and make sure the pot drains. Overwatering is the most common mistake."),
    ("what is inflation?", "Inflation is the general rise in prices over time, which means the same amount of money buys a little less each year."),
    ("what is compound interest?", "Compound interest is interest earned on both the original amount and the interest already added, so savings grow faster over time."),
    ("what is a budget?", "A budget is a plan for your money: how much comes in, how much goes out on each kind of expense, and how much you save."),
    ("what is supply and demand?", "Supply and demand describes how prices form: when something is scarce and many people want it, prices rise; when it is plentiful and wanted less, prices fall."),
    ("what is democracy?", "Democracy is a system of government in which citizens hold power, usually by voting for representatives in free and fair elections."),
    ("what is a synonym?", "A synonym is a word that means the same or nearly the same as another word, like 'big' and 'large'."),
    ("what is the difference between a virus and a bacterium?", "Bacteria are living single cells that can reproduce on their own; viruses are much smaller and can only multiply inside the cells of a host. Antibiotics work on bacteria, not viruses."),
    ("why do cats purr?", "Cats purr when they are content, but also when stressed or hurt; the vibration may help calm them and even aid healing."),
    ("how long do elephants live?", "Elephants in the wild typically live 60 to 70 years."),
    ("why do birds migrate?", "Birds migrate to follow food and good breeding conditions, flying to warmer places when winter makes food scarce and returning when it is plentiful again."),
    ("what is a mammal?", "A mammal is a warm-blooded animal with hair or fur that feeds its young on milk - humans, whales and bats are all mammals."),
    ("what is the tallest mountain on Earth?", "Mount Everest, on the border of Nepal and China, is the highest above sea level at about 8,849 metres."),
    ("what is the longest river in the world?", "The Nile and the Amazon are both about 6,500 to 7,000 kilometres long; the Nile is usually listed as the longest."),
    ("what is a volcano?", "A volcano is an opening in Earth's crust where molten rock, gas and ash escape from below, often building up a mountain over time."),
    ("what causes earthquakes?", "Most earthquakes happen when stress builds up where tectonic plates meet and the rocks suddenly slip, sending out seismic waves."),
    ("what is renewable energy?", "Renewable energy comes from sources that are naturally replenished, such as sunlight, wind, flowing water and geothermal heat."),
    ("how does a solar panel work?", "Solar panels are made of cells, usually silicon, that release electrons when light hits them. That flow of electrons is an electric current."),
    ("what is the greenhouse effect?", "Gases like carbon dioxide and methane let sunlight in but trap some of the heat Earth gives off, keeping the planet warmer. Adding more of them strengthens the effect."),
    ("what is a prime minister?", "A prime minister is the head of government in a parliamentary system, usually the leader of the party or coalition with most support in parliament."),
    ("what is the internet?", "The internet is a worldwide network of connected computer networks that exchange data using shared protocols such as TCP/IP."),
    ("what is machine learning?", "Machine learning is a way of building programs that learn patterns from examples instead of following only hand-written rules."),
    ("what is encryption?", "Encryption scrambles data with a key so that only someone with the right key can read it, which protects messages and passwords."),
    ("what is a password manager?", "A password manager stores your passwords in an encrypted vault, so you can use a long unique password for every site and only remember one master password."),
    ("what is the difference between RAM and storage?", "RAM is fast, temporary memory for what the computer is working on right now; storage (an SSD or hard drive) keeps files even when the power is off."),
    ("why do we yawn?", "Nobody knows for sure. Leading ideas are that yawning helps cool the brain and signals changes in alertness; it is also contagious among people."),
    ("what is a leap year?", "A leap year has 366 days, with 29 February added, to keep the calendar in line with Earth's orbit. It happens every four years, except most century years."),
    ("what is the boiling point of water?", "At sea level, pure water boils at 100 degrees Celsius (212 degrees Fahrenheit). At higher altitudes it boils at a lower temperature."),
    ("how many continents are there?", "By the most common count there are seven: Africa, Antarctica, Asia, Australia (Oceania), Europe, North America and South America."),
    ("what is an orchestra?", "An orchestra is a large group of musicians playing together, organised in sections: strings, woodwind, brass and percussion, usually led by a conductor."),
    ("what is a sonnet?", "A sonnet is a 14-line poem with a set rhyme scheme; Shakespeare's sonnets use three quatrains and a closing couplet."),
    ("who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa in the early 16th century. It hangs in the Louvre in Paris."),
)

# Slot families add many more, still correct, question/answer pairs.
_CAPITALS = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Canada", "Ottawa"), ("Brazil", "Brasilia"),
    ("Kenya", "Nairobi"), ("Egypt", "Cairo"), ("Norway", "Oslo"), ("Spain", "Madrid"), ("Italy", "Rome"),
    ("Germany", "Berlin"), ("India", "New Delhi"), ("Mexico", "Mexico City"), ("Argentina", "Buenos Aires"),
    ("Portugal", "Lisbon"), ("Poland", "Warsaw"), ("Greece", "Athens"), ("Turkey", "Ankara"),
    ("South Korea", "Seoul"), ("New Zealand", "Wellington"), ("Ireland", "Dublin"), ("Peru", "Lima"),
    ("Chile", "Santiago"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Nigeria", "Abuja"), ("Morocco", "Rabat"), ("Switzerland", "Bern"),
)
_SYNONYMS = (
    ("big", "large, huge or enormous"), ("fast", "quick, rapid or swift"),
    ("smart", "clever, bright or intelligent"), ("tired", "weary, exhausted or sleepy"),
    ("beautiful", "lovely, gorgeous or attractive"), ("difficult", "hard, tough or challenging"),
    ("angry", "cross, furious or irritated"), ("small", "little, tiny or compact"), ("begin", "start, commence or launch"),
    ("important", "significant, vital or key"), ("funny", "amusing, humorous or comical"),
    ("brave", "courageous, bold or fearless"), ("quiet", "silent, hushed or calm"), ("strange", "odd, unusual or peculiar"),
)
_PLURALS = (
    ("child", "children"), ("mouse", "mice"), ("goose", "geese"), ("cactus", "cacti (or cactuses)"),
    ("person", "people"), ("tooth", "teeth"), ("leaf", "leaves"), ("knife", "knives"), ("sheep", "sheep"),
    ("criterion", "criteria"), ("analysis", "analyses"), ("woman", "women"), ("foot", "feet"), ("potato", "potatoes"),
)
_ANTONYMS = (
    ("hot", "cold"), ("ancient", "modern"), ("generous", "mean or stingy"), ("shallow", "deep"), ("victory", "defeat"),
    ("include", "exclude"), ("optimistic", "pessimistic"), ("expand", "contract"), ("rare", "common"), ("arrive", "depart"),
)
_FAMILY_QUESTIONS: tuple[tuple[Sequence[tuple[str, str]], tuple[str, ...], tuple[str, ...]], ...] = (
    (_CAPITALS, ("what is the capital of {0}?", "which city is the capital of {0}?"),
     ("The capital of {0} is {1}.", "{1} is the capital of {0}.")),
    (_SYNONYMS, ("what's another word for '{0}'?", "give me a synonym for '{0}'."),
     ("You could say {1}.", "Good synonyms for '{0}' are {1}.")),
    (_PLURALS, ("what is the plural of '{0}'?", "how do you make '{0}' plural?"),
     ("The plural of '{0}' is '{1}'.", "It's '{1}'.")),
    (_ANTONYMS, ("what is the opposite of '{0}'?", "give me an antonym of '{0}'."),
     ("The opposite of '{0}' is '{1}'.", "A common antonym is '{1}'.")),
)
_ASK_PREFIXES = (
    "", "", "", "", "", "", "Quick question - ", "I was wondering, ", "Explain briefly: ", "Help me understand: ",
    "Can you tell me: ", "My kid asked me this today: ", "For a quiz tonight - ", "I've always wondered: ",
    "Settle a debate for us: ", "Sorry if this is basic, but ", "Out of curiosity, ", "One more thing I'm curious about: ",
)
# Opening and closing turns; any user line fits any assistant line of the same pool.
_GREETINGS = ("Hi there!", "Hello.", "Hey!", "Hi!", "Good morning!", "Good afternoon.", "Good evening.",
              "Hey, got a minute?", "Hi, I have a question.", "Hello, can you help me with something?")
_GREETING_REPLIES = ("Hello! How can I help you today?", "Hi! What can I do for you?", "Hello! What would you like to know?",
                     "Hi there! What's on your mind?", "Hey! Sure, how can I help?", "Hello! Ask away.")
_THANKS = ("Thanks!", "Thank you, that helps.", "Great, thanks a lot.", "Perfect, thank you.", "Cool, that makes sense.",
           "Thanks, that's clear now.", "Got it, thanks.", "Appreciate it!")
_THANKS_REPLIES = ("You're welcome!", "Glad it helped. Anything else?", "Happy to help!", "You're welcome - have a good day!",
                   "Any time! Let me know if you have more questions.", "My pleasure.")
_WRITING = (
    ("suggest a title for a blog post about {0}.", "How about \"A Beginner's Guide to {1}\"?",
     ("home gardening", "saving money", "learning to cook", "remote work", "birdwatching", "running")),
    ("give me an opening line for an essay about {0}.", "Try: \"Few things shape our daily lives as quietly as {0}.\"",
     ("public libraries", "friendship", "city parks", "sleep", "music", "technology")),
    ("how should I end a polite email to a colleague?", "Something like \"Thanks again for your help - best regards,\" followed by your name works well.", ()),
    ("write a one-sentence thank-you note for a gift.", "\"Thank you so much for the lovely gift - it was really thoughtful of you!\"", ()),
    ("how do I start a cover letter?", "Open with the role you're applying for and one strong reason you're a good fit, e.g. \"I am excited to apply for the analyst role, where my experience in data reporting...\"", ()),
)


# Share of chat questions that are small worked maths problems, answered in text. No catalogue tool
# computes areas, speeds or derivatives (plain arithmetic is left out: a calculator tool would fit it), so as no-call turns they teach that a computational request
# still gets no call when the offered tools do not fit it; without them every task-like request in
# the tools stage is a call or a near miss of a catalogue tool. 0 draws nothing: earlier sets replay.
WORKED_SHARE = 0.15


def _worked(rng: random.Random) -> tuple[str, str]:
    """A maths question with its worked answer, numbers drawn and the answer computed."""
    kind = rng.randrange(7)
    if kind == 0:
        w, h = rng.randint(2, 20), rng.randint(2, 30)
        q = rng.choice(("what is the area of a rectangle {w} m wide and {h} m long?",
                        "a room is {w} m by {h} m. How many square metres is its floor?"))
        return q.format(w=w, h=h), f"Area = width × length = {w} × {h} = {w * h} square metres."
    if kind == 1:
        w, h = rng.randint(2, 20), rng.randint(2, 30)
        return (f"what is the perimeter of a {w} by {h} rectangle?",
                f"Perimeter = 2 × ({w} + {h}) = {2 * (w + h)}.")
    if kind == 2:
        r = rng.randint(1, 15)
        if rng.random() < 0.5:
            return (f"what is the circumference of a circle with radius {r} cm?",
                    f"C = 2πr = 2 × π × {r} ≈ {2 * 3.14159265 * r:.2f} cm.")
        return f"how big is the area of a circle of radius {r}?", f"A = πr² = π × {r}² ≈ {3.14159265 * r * r:.2f}."
    if kind == 3:
        b, h = rng.randint(2, 24), rng.randint(2, 18)
        return (f"find the area of a triangle with base {b} and height {h}.",
                f"Area = ½ × base × height = ½ × {b} × {h} = {b * h / 2:g}.")
    if kind == 4:
        t = rng.randint(2, 6)
        d = t * rng.randint(15, 110)
        return (f"a train covers {d} km in {t} hours. What is its average speed?",
                f"Average speed = distance / time = {d} / {t} = {d // t} km/h.")
    if kind == 5:
        a, n = rng.randint(2, 9), rng.randint(2, 5)
        return (f"what is the derivative of {a}x^{n}?",
                f"Using the power rule, d/dx {a}x^{n} = {a * n}x" + (f"^{n - 1}." if n > 2 else "."))
    side = rng.randint(2, 12)
    return f"what is the volume of a cube with {side} cm sides?", f"V = side³ = {side}³ = {side ** 3} cubic centimetres."


def _asked(rng: random.Random, question: str) -> str:
    """The question as a user writes it, sometimes after a lead-in ("Out of curiosity, ...")."""
    prefix = rng.choice(_ASK_PREFIXES)
    return prefix + (question if prefix else _sentence(question))


def _qa(rng: random.Random) -> tuple[str, str]:
    if WORKED_SHARE and rng.random() < WORKED_SHARE:
        q, a = _worked(rng)
        return _asked(rng, q), a
    r = rng.random()
    if r < 0.62:
        q, a = rng.choice(_FACTS)
        return _asked(rng, q), a
    if r < 0.92:
        pool, questions, answers = rng.choice(_FAMILY_QUESTIONS)
        item = rng.choice(pool)
        q, a = rng.choice(questions).format(*item), rng.choice(answers).format(*item)
        return _asked(rng, q), _sentence(a)
    template, answer, topics = rng.choice(_WRITING)
    topic = rng.choice(topics) if topics else ""
    return _sentence(template.format(topic)), answer.format(topic, topic.title())


def _chat_row(rng: random.Random) -> dict[str, Any]:
    turns: list[tuple[str, str]] = []
    if rng.random() < 0.3:
        turns.append((rng.choice(_GREETINGS), rng.choice(_GREETING_REPLIES)))
    turns.append(_qa(rng))
    if len(turns) < 3 and rng.random() < 0.5:
        turns.append(_qa(rng))
    if len(turns) < 3 and rng.random() < 0.35:
        turns.append((rng.choice(_THANKS), rng.choice(_THANKS_REPLIES)))
    messages = [m for user, assistant in turns
                for m in ({"role": "user", "content": user}, {"role": "assistant", "content": assistant})]
    prompt = messages[0]["content"]
    return {"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(), "messages": messages}


def chat_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` short conversations (1-3 exchanges, no tool calls) in HuggingFaceH4/ultrachat_200k's format."""
    rng = random.Random(seed)
    return [_chat_row(rng) for _ in range(n)]


def write_jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    """The bytes of a JSONL file: one sorted-key JSON object per line (stable across runs)."""
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
