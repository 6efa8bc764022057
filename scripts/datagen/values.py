"""Value pools the catalogue draws arguments from, the draws, how values read inside a query, and
the capital letter every query and question starts with.

Every draw is a function of a `random.Random`, so rows stay a pure function of their seed; the order
of a pool is part of what a seed yields (reordering one changes every data set drawn from it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

CITIES = (
    "Paris", "Berlin", "Madrid", "Lisbon", "Rome", "Vienna", "Prague", "Oslo", "Stockholm", "Helsinki",
    "Dublin", "Edinburgh", "Amsterdam", "Brussels", "Zurich", "Warsaw", "Budapest", "Athens", "Istanbul",
    "Cairo", "Nairobi", "Cape Town", "Lagos", "Mumbai", "Delhi", "Bangkok", "Singapore", "Seoul", "Tokyo",
    "Osaka", "Sydney", "Melbourne", "Auckland", "Toronto", "Vancouver", "Chicago", "Denver", "Boston",
    "Seattle", "Austin", "Mexico City", "Lima", "Bogota", "Santiago", "Buenos Aires", "Reykjavik",
)
NAMES = (
    "Alice", "Bob", "Carmen", "Deepak", "Elena", "Farah", "Gustavo", "Hana", "Ivan", "Jonas", "Keiko",
    "Liam", "Maya", "Nikolai", "Olga", "Priya", "Quentin", "Rosa", "Samir", "Tomas", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe", "Amara", "Bruno", "Chloe", "Dmitri", "Esther", "Felix",
)
SURNAMES = ("Smith", "Garcia", "Khan", "Novak", "Tanaka", "Okafor", "Silva", "Larsen", "Rossi", "Kim")
EVENT_TITLES = (
    "team sync", "dentist appointment", "project kickoff", "budget review", "yoga class", "book club",
    "quarterly planning", "coffee with a mentor", "design review", "parent-teacher meeting", "guitar lesson",
    "sprint retro", "client call", "lunch with the sales team", "car service",
)
FOLDERS = ("/home/user/documents", "/home/user/photos", "/srv/data", "/var/log", "/home/user/projects",
           "/tmp/exports", "/home/user/music", "/opt/reports")
FILES = ("notes.txt", "report.csv", "config.yaml", "todo.md", "invoice_0423.pdf", "server.log", "main.py",
         "budget_2024.xlsx", "README.md", "results.json")
PATTERNS = ("*.pdf", "*.csv", "*.log", "*.jpg", "*.py", "report_*", "*.md", "backup_*.zip")
PRODUCTS = (
    "wireless earbuds", "running shoes", "a standing desk", "a coffee grinder", "hiking backpack",
    "a mechanical keyboard", "yoga mat", "a rice cooker", "noise-cancelling headphones", "a desk lamp",
    "a water bottle", "a phone case", "an electric kettle", "a winter jacket", "a camping tent",
)
BRANDS = ("Acme", "Northpeak", "Lumo", "Brightline", "Kestrel", "Orbit", "Vale")
STREETS = ("Elm Street", "Harbour Road", "Maple Avenue", "King's Lane", "Station Road", "Oak Drive",
           "Mill Lane", "Park Terrace")
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR", "SEK", "MXN")
SONGS = (
    "Morning Tide", "Paper Lanterns", "City of Glass", "Slow Orbit", "Golden Hour Drive", "Northern Lights",
    "Echoes in the Hall", "Summer Static", "River Song", "Midnight Arcade", "Blue Horizon", "Quiet Engines",
)
ARTISTS = ("The Lamplighters", "Nova Reyes", "Harbor Lights", "Mina Sato", "The Paper Kites Club",
           "Leo Marsh", "Velvet Compass", "Ada Quinn")
PLAYLIST_NAMES = ("road trip", "focus", "gym mix", "sunday morning", "party", "study beats", "chill evening")
INGREDIENTS = ("chicken", "rice", "spinach", "chickpeas", "tomatoes", "eggs", "mushrooms", "lentils",
               "potatoes", "tofu", "salmon", "broccoli", "garlic", "feta", "pasta", "peppers", "onions")
DIETS = ("vegetarian", "vegan", "gluten-free", "low-carb", "dairy-free")
RECIPES = ("banana bread", "vegetable curry", "lasagne", "pancakes", "tomato soup", "chili con carne",
           "apple crumble", "fried rice", "shakshuka", "guacamole")
TEAMS = ("Riverside Rovers", "Northfield United", "Harbor City FC", "Eastbrook Athletic", "Lakeside Wolves",
         "Granite Bay Rangers", "Westmoor Town", "Silver Valley SC")
LEAGUES = ("Premier Division", "Coastal League", "Northern Cup", "City Basketball League", "Metro Hockey League")
CHANNELS = ("#general", "#engineering", "#design", "#random", "#support", "#marketing", "#ops")
MESSAGES = (
    "the build is green again", "standup moves to 10:30 today", "lunch is on me", "I'm running 10 minutes late",
    "the release notes are ready for review", "please update your tickets before Friday",
    "the office will be closed on Monday", "don't forget the demo at 3pm",
)
REMINDERS = ("call mum", "water the plants", "pay the electricity bill", "take out the recycling",
             "renew my passport", "submit the expense report", "pick up the dry cleaning", "stretch")
TIMER_LABELS = ("pasta", "tea", "laundry", "pomodoro", "oven", "break")
TEXTS = (
    "The quick brown fox jumps over the lazy dog", "Hello World from kubetune",
    "Summer Sale: Up to 50% Off Everything", "Notes from the Tuesday planning meeting",
    "A short guide to growing tomatoes", "My First Marathon Experience", "Ten Tips for Better Sleep",
)
RESTAURANTS = ("La Piazza", "The Green Fig", "Sakura House", "Blue Door Bistro", "Casa Verde", "Spice Route")
ZONES = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo",
         "Asia/Kolkata", "Australia/Sydney")
PLACE_KINDS = ("cafe", "pharmacy", "supermarket", "petrol station", "park", "bakery", "library", "gym")
REPEATS = ("daily", "weekly", "monthly")
ORDER_REASONS = ("ordered by mistake", "found a better price", "arrived too late", "wrong size")
CARRIERS = ("DHL", "UPS", "FedEx", "Royal Mail", "USPS")
MEASURES = ("mean", "median", "max", "min", "stdev")
LANGUAGES = ("French", "German", "Spanish", "Italian", "Portuguese", "Dutch", "Swedish", "Polish", "Turkish",
             "Korean", "Hindi", "Arabic", "Greek", "Czech")
FOREIGN_TEXTS = ("Je voudrais un café", "Wo ist der Bahnhof", "Dónde está la biblioteca", "Grazie mille per tutto",
                 "Obrigado pela ajuda", "Ik hou van fietsen", "Tack så mycket", "Dziękuję bardzo",
                 "Bugün hava çok güzel", "Kiitos paljon")
# String parameters whose values look like code or numbers: the call must still quote them.
EXPRESSIONS = ("x**2 - 3*x + 2", "sin(x) / x", "2*x + 7", "(x + 1) * (x - 1)", "x**3 - x", "exp(-x**2)",
               "3*x**2 + 2*x - 5", "sqrt(x + 4)", "1 / (1 + x**2)", "log(x + 1)", "4*x - 12", "(2*x + 1)**2")
COINS = ("BTC", "ETH", "SOL", "ADA", "DOGE", "XRP", "DOT", "LTC")
TICKERS = ("IBM", "ORCL", "INTC", "SAP", "NFLX", "ADBE", "CSCO", "UBER", "SHOP", "SONY")
MAIL_DOMAINS = ("example.org", "mail.com", "studio.dev", "work.io")
NEWS_TOPICS = ("electric cars", "the Mars rover", "solar power", "the transfer window", "smartphone launches",
               "interest rates", "ocean cleanup", "space tourism", "vaccine research")
NOTE_TITLES = ("groceries", "gift ideas", "meeting notes", "packing list", "book quotes", "weekend plans",
               "car maintenance")
NOTE_BODIES = ("buy oat milk and bread", "ask Maya about the venue", "the wifi password is on the fridge",
               "call the plumber on Thursday", "pack the blue charger", "return the library books by the 12th",
               "try the new bakery on Station Road")
VIDEOS = ("The Long Voyage", "Ocean Planet episode 3", "Cooking with Rosa", "City Lights at Dawn",
          "Mountain Rescue", "The Last Orchard", "Robots of Tomorrow")
# Same-quantity unit groups, so a conversion always makes sense.
UNIT_GROUPS = (
    ("kilometers", "miles", "meters", "feet"),
    ("kilograms", "pounds", "grams", "ounces"),
    ("celsius", "fahrenheit", "kelvin"),
    ("liters", "gallons", "milliliters", "cups"),
)


def pick(pool: Sequence[Any]) -> Callable[[random.Random], Any]:
    return lambda rng: rng.choice(pool)


def ints(lo: int, hi: int) -> Callable[[random.Random], int]:
    return lambda rng: rng.randint(lo, hi)


def floats(lo: float, hi: float, digits: int = 1) -> Callable[[random.Random], float]:
    return lambda rng: round(rng.uniform(lo, hi), digits)


def day(rng: random.Random) -> str:
    return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def clock(rng: random.Random) -> str:
    return f"{rng.randint(7, 20):02d}:{rng.choice(('00', '15', '30', '45'))}"


def sample(pool: Sequence[Any], lo: int, hi: int) -> Callable[[random.Random], list[Any]]:
    return lambda rng: rng.sample(pool, rng.randint(lo, hi))


def and_list(items: Sequence[Any]) -> str:
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def number(v: float) -> str:
    return f"{v:g}"


def money(v: float) -> str:
    return f"{v:.2f}"


def phone(rng: random.Random) -> str:
    return f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}"


def account(rng: random.Random) -> str:
    return f"ACC-{rng.randint(10000, 99999)}"


def email(rng: random.Random) -> str:
    return f"{rng.choice(NAMES).lower()}.{rng.choice(SURNAMES).lower()}@{rng.choice(MAIL_DOMAINS)}"


def address(rng: random.Random) -> dict[str, Any]:
    return {"street": f"{rng.randint(1, 180)} {rng.choice(STREETS)}", "city": rng.choice(CITIES),
            "postcode": f"{rng.randint(10000, 99999)}"}


def say_address(a: dict[str, Any]) -> str:
    return f"{a['street']}, {a['city']} {a['postcode']}"


def filters(rng: random.Random) -> dict[str, Any]:
    f: dict[str, Any] = {"max_price": float(rng.choice((20, 50, 80, 100, 150, 300)))}
    if rng.random() < 0.5:
        f["brand"] = rng.choice(BRANDS)
    return f


def say_filters(f: dict[str, Any]) -> str:
    text = f"under {f['max_price']:.0f} dollars"
    return text + f" from {f['brand']}" if "brand" in f else text


def location(rng: random.Random) -> dict[str, Any]:
    return {"lat": round(rng.uniform(-60, 70), 4), "lon": round(rng.uniform(-170, 170), 4)}


def say_location(loc: dict[str, Any]) -> str:
    return f"latitude {loc['lat']}, longitude {loc['lon']}"


def contact_fields(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(NAMES).lower()
    choices = (("phone", phone(rng)), ("email", f"{name}@example.com"), ("company", rng.choice(BRANDS) + " Ltd"))
    return dict(rng.sample(choices, rng.randint(1, 2)))


def say_fields(f: dict[str, Any]) -> str:
    return and_list([f"{k} to {v}" for k, v in f.items()])


def units(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(rng.choice(UNIT_GROUPS), 2)
    return {"from_unit": a, "to_unit": b}


def trip(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(CITIES, 2)
    return {"origin": a, "destination": b}


def two_cities(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(CITIES, 2)
    return {"origin_city": a, "destination_city": b}


def two_currencies(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(CURRENCIES, 2)
    return {"base": a, "target": b}


def two_accounts(rng: random.Random) -> dict[str, Any]:
    return {"from_account": account(rng), "to_account": account(rng)}


def two_zones(rng: random.Random) -> dict[str, Any]:
    a, b = rng.sample(ZONES, 2)
    return {"from_zone": a, "to_zone": b}


def date_range(rng: random.Random) -> dict[str, Any]:
    m = rng.randint(1, 11)
    return {"start_date": f"2025-{m:02d}-{rng.randint(1, 14):02d}",
            "end_date": f"2025-{m + rng.randint(0, 1):02d}-{rng.randint(15, 28):02d}"}


def people(lo: int, hi: int) -> Callable[[random.Random], list[str]]:
    return sample(NAMES, lo, hi)


def sentence(text: str) -> str:
    """`text` with its first letter in capitals (templates start in lower case)."""
    return text[0].upper() + text[1:]
