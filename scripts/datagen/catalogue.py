"""The tool catalogue: every tool rows can offer, in the order seeds draw them, and their schemas.

Nothing here is copied from BFCL, xlam or any evaluation set; in particular no tool carries a name of
the held-out `seed-tools` suite (`SEED_TOOL_NAMES`).
"""

from __future__ import annotations

import copy
from typing import Any

from . import values as v
from .toolspec import Param as P
from .toolspec import Tool

# The held-out evaluation suite's tools: the catalogue must never offer these names.
SEED_TOOL_NAMES = frozenset(
    {"get_weather", "search_web", "send_email", "get_stock_price", "translate_text", "calculate", "book_flight"}
)

# The catalogue. Common parameter names appear with more than one type (`location` is a city string for
# hotels and air quality, a lat/lon object for nearby places): a small model that only ever saw one type
# per name writes that type from memory instead of reading the offered schema.

TOOLS: tuple[Tool, ...] = (
    Tool("get_forecast", "Weather forecast for a city over the coming days.", {
        "city": P("str", "City name.", v.pick(v.CITIES)),
        "days": P("int, optional", "Number of days to forecast.", v.ints(1, 10), 3),
        "units": P("str, optional", "'metric' or 'imperial'.", v.pick(("metric", "imperial")), "metric"),
    }, (
        "what's the weather going to be like in {city}?",
        "give me the {days}-day forecast for {city}.",
        "will it rain in {city} over the next {days} days?",
        "forecast for {city} in {units} units, please.",
        "I'm travelling to {city} - what's the forecast for the next {days} days in {units} units?",
        "how warm will it be in {city} this week?",
    )),
    Tool("get_air_quality", "Current air quality index for a place.", {
        "location": P("str", "City name.", v.pick(v.CITIES)),
    }, (
        "how is the air quality in {location} right now?",
        "is the air in {location} safe for a run today?",
        "check the AQI for {location}.",
    )),
    Tool("convert_units", "Convert a value between two units of the same quantity.", {
        "value": P("float", "Amount to convert.", v.floats(0.5, 500, 1)),
        "from_unit": P("str", "Unit of the value.", v.pick(("meters",))),
        "to_unit": P("str", "Target unit.", v.pick(("feet",))),
    }, (
        "convert {value} {from_unit} to {to_unit}.",
        "how many {to_unit} is {value} {from_unit}?",
        "what is {value} {from_unit} in {to_unit}?",
        "I need {value} {from_unit} expressed in {to_unit}.",
    ), joint=v.units),
    Tool("solve_quadratic", "Real roots of a*x^2 + b*x + c = 0.", {
        "a": P("float", "Coefficient of x^2.", v.floats(1, 9, 0), say=v.number),
        "b": P("float", "Coefficient of x.", v.floats(-20, 20, 0), say=v.number),
        "c": P("float", "Constant term.", v.floats(-30, 30, 0), say=v.number),
    }, (
        "solve {a}x^2 + ({b})x + ({c}) = 0.",
        "find the roots of the quadratic with a={a}, b={b} and c={c}.",
        "what are the solutions of {a}*x^2 + ({b})*x + ({c}) = 0?",
    )),
    Tool("summarize_numbers", "Summary statistic of a list of integers.", {
        "numbers": P("List[int]", "The values.", lambda rng: [rng.randint(1, 200) for _ in range(rng.randint(3, 7))],
                     say=v.and_list),
        "measure": P("str, optional", "mean, median, max, min or stdev.", v.pick(v.MEASURES), "mean"),
    }, (
        "what's the average of {numbers}?",
        "compute the {measure} of {numbers}.",
        "give me the {measure} of these values: {numbers}.",
        "I have the scores {numbers}; what is their {measure}?",
    )),
    Tool("percentage_of", "What percentage one number is of another.", {
        "part": P("float", "The part.", v.floats(1, 400, 1)),
        "whole": P("float", "The whole.", v.floats(400, 2000, 0)),
        "decimals": P("int, optional", "Decimal places in the result.", v.ints(0, 3), 2),
    }, (
        "what percentage of {whole} is {part}?",
        "{part} out of {whole} - what percent is that?",
        "express {part} as a percentage of {whole}, rounded to {decimals} decimals.",
    )),
    Tool("check_prime", "Whether an integer is prime.", {
        "number": P("int", "The integer to test.", v.ints(2, 100000)),
    }, (
        "is {number} a prime number?",
        "check whether {number} is prime.",
        "can you tell me if {number} is prime?",
    )),
    Tool("create_event", "Add an event to the calendar.", {
        "title": P("str", "Event title.", v.pick(v.EVENT_TITLES)),
        "date": P("str", "Date, YYYY-MM-DD.", v.day),
        "start_time": P("str", "Start time, HH:MM.", v.clock),
        "duration_minutes": P("int, optional", "Length in minutes.", v.pick((15, 30, 45, 60, 90, 120)), 60),
        "attendees": P("List[str], optional", "People to invite.", v.people(1, 3), [], say=v.and_list),
    }, (
        "put a {title} in my calendar on {date} at {start_time}.",
        "schedule {title} for {date} at {start_time} for {duration_minutes} minutes.",
        "add {title} on {date} at {start_time} and invite {attendees}.",
        "create an event called {title} on {date}, starting {start_time}, {duration_minutes} minutes long, with {attendees}.",
    )),
    Tool("list_events", "List calendar events on a date.", {
        "date": P("str", "Date, YYYY-MM-DD.", v.day),
        "calendar": P("str, optional", "Which calendar.", v.pick(("work", "personal", "family")), "personal"),
    }, (
        "what do I have on {date}?",
        "show my {calendar} calendar for {date}.",
        "am I free on {date}? List my events.",
    )),
    Tool("find_free_slot", "Find a meeting slot when all attendees are free.", {
        "attendees": P("List[str]", "People who must attend.", v.people(2, 4), say=v.and_list),
        "date": P("str", "Date, YYYY-MM-DD.", v.day),
        "duration_minutes": P("int", "Length in minutes.", v.pick((15, 30, 45, 60, 90))),
    }, (
        "find a {duration_minutes}-minute slot on {date} when {attendees} are all free.",
        "when can {attendees} meet for {duration_minutes} minutes on {date}?",
    )),
    Tool("read_file", "Read the first lines of a text file.", {
        "path": P("str", "File path.", lambda rng: f"{rng.choice(v.FOLDERS)}/{rng.choice(v.FILES)}"),
        "max_lines": P("int, optional", "Lines to return.", v.pick((10, 20, 50, 200)), 100),
    }, (
        "show me what's in {path}.",
        "open {path} and give me the first {max_lines} lines.",
        "read the file {path}.",
    )),
    Tool("search_files", "Find files matching a glob pattern.", {
        "directory": P("str", "Folder to search.", v.pick(v.FOLDERS)),
        "pattern": P("str", "Glob pattern.", v.pick(v.PATTERNS)),
        "recursive": P("bool, optional", "Search subfolders.", lambda rng: False, True,
                       say=lambda v: "subfolders" if v else "the top folder only"),
    }, (
        "find all {pattern} files in {directory}.",
        "list {pattern} under {directory}, {recursive}.",
        "which files in {directory} match {pattern}?",
    )),
    Tool("compress_folder", "Create an archive of a folder.", {
        "path": P("str", "Folder to archive.", v.pick(v.FOLDERS)),
        "format": P("str, optional", "zip, tar.gz or 7z.", v.pick(("tar.gz", "7z", "zip")), "zip"),
    }, (
        "compress {path} into an archive.",
        "make a {format} archive of {path}.",
        "zip up the folder {path}.",
    )),
    Tool("search_products", "Search the shop catalogue.", {
        "query": P("str", "What to look for.", v.pick(v.PRODUCTS)),
        "filters": P("Dict[str, Any], optional", "Filters such as max_price and brand.", v.filters, {},
                     say=v.say_filters),
        "limit": P("int, optional", "Maximum results.", v.pick((3, 5, 20)), 10),
    }, (
        "look for {query} in the shop.",
        "find me {query} {filters}.",
        "show the top {limit} results for {query}.",
        "search for {query} {filters} and give me {limit} options.",
    )),
    Tool("place_order", "Order a product for delivery.", {
        "product_id": P("str", "Catalogue id.", lambda rng: f"SKU-{rng.randint(1000, 9999)}"),
        "quantity": P("int", "How many.", v.ints(1, 6)),
        "shipping_address": P("Dict[str, Any]", "street, city and postcode.", v.address, say=v.say_address),
    }, (
        "order {quantity} of {product_id} and ship them to {shipping_address}.",
        "please buy {quantity} x {product_id}, delivery address {shipping_address}.",
        "send {quantity} units of product {product_id} to {shipping_address}.",
    )),
    Tool("cancel_order", "Cancel an order that has not shipped.", {
        "order_id": P("str", "Order number.", lambda rng: f"ORD-{rng.randint(100000, 999999)}"),
        "reason": P("str, optional", "Why it is cancelled.", v.pick(v.ORDER_REASONS), ""),
    }, (
        "cancel order {order_id}.",
        "please cancel {order_id}, the reason is: {reason}.",
        "I want to cancel my order {order_id} - reason: {reason}.",
    )),
    Tool("track_package", "Delivery status of a parcel.", {
        "tracking_number": P("str", "Tracking number.", lambda rng: f"TRK{rng.randint(10**8, 10**9 - 1)}"),
        "carrier": P("str, optional", "Carrier name.", v.pick(v.CARRIERS), "auto"),
    }, (
        "where is my parcel {tracking_number}?",
        "track {tracking_number} with {carrier}.",
        "has package {tracking_number} been delivered yet?",
    )),
    Tool("find_hotels", "Search hotels in a city.", {
        "location": P("str", "City or area.", v.pick(v.CITIES)),
        "check_in": P("str", "Check-in date, YYYY-MM-DD.", v.day),
        "nights": P("int", "Number of nights.", v.ints(1, 10)),
        "max_price": P("float, optional", "Max price per night.", v.pick((80.0, 120.0, 150.0, 250.0)), None),
    }, (
        "find a hotel in {location} from {check_in} for {nights} nights.",
        "I need somewhere to stay in {location}, {nights} nights starting {check_in}, under {max_price} a night.",
        "hotels in {location} checking in {check_in}, {nights} nights?",
    )),
    Tool("search_train_times", "Train departures between two stations.", {
        "origin": P("str", "Departure city.", v.pick(v.CITIES)),
        "destination": P("str", "Arrival city.", v.pick(v.CITIES)),
        "date": P("str", "Travel date, YYYY-MM-DD.", v.day),
        "first_class": P("bool, optional", "First class only.", lambda rng: True, False),
    }, (
        "trains from {origin} to {destination} on {date}?",
        "when are the trains from {origin} to {destination} on {date}?",
        "find first class trains from {origin} to {destination} on {date}.{first_class}",
    ), joint=v.trip),
    Tool("get_exchange_rate", "Exchange rate between two currencies.", {
        "base": P("str", "ISO code to convert from.", v.pick(v.CURRENCIES)),
        "target": P("str", "ISO code to convert to.", v.pick(v.CURRENCIES)),
    }, (
        "what's the {base} to {target} rate?",
        "how much is one {base} in {target} today?",
        "exchange rate from {base} to {target}, please.",
    ), joint=v.two_currencies),
    Tool("get_account_balance", "Balance of a bank account.", {
        "account_id": P("str", "Account id.", v.account),
    }, (
        "what's the balance on {account_id}?",
        "how much money is in account {account_id}?",
    )),
    Tool("transfer_funds", "Move money between accounts.", {
        "from_account": P("str", "Source account.", v.account),
        "to_account": P("str", "Destination account.", v.account),
        "amount": P("float", "Amount.", v.floats(5, 2000, 2), say=v.money),
        "memo": P("str, optional", "Note for the payment.", v.pick(("rent", "dinner", "savings", "gift")), ""),
    }, (
        "transfer {amount} from {from_account} to {to_account}.",
        "move {amount} from {from_account} into {to_account} with the note {memo}.",
        "send {amount} from account {from_account} to {to_account}.",
    ), joint=v.two_accounts),
    Tool("list_transactions", "Transactions of an account in a date range.", {
        "account_id": P("str", "Account id.", v.account),
        "start_date": P("str", "From, YYYY-MM-DD.", v.day),
        "end_date": P("str", "To, YYYY-MM-DD.", v.day),
        "min_amount": P("float, optional", "Only amounts at least this.", v.pick((50.0, 100.0, 500.0)), 0.0),
    }, (
        "show transactions on {account_id} between {start_date} and {end_date}.",
        "list payments over {min_amount} on {account_id} from {start_date} to {end_date}.",
    ), joint=v.date_range),
    Tool("send_sms", "Send a text message.", {
        "phone_number": P("str", "Recipient number.", v.phone),
        "message": P("str", "Text to send.", v.pick(v.MESSAGES)),
    }, (
        "text {phone_number}: {message}.",
        "send an SMS to {phone_number} saying {message}.",
    )),
    Tool("post_team_message", "Post to a team chat channel.", {
        "channel": P("str", "Channel name.", v.pick(v.CHANNELS)),
        "text": P("str", "Message text.", v.pick(v.MESSAGES)),
        "mentions": P("List[str], optional", "People to mention.", v.people(1, 2), [], say=v.and_list),
    }, (
        "post in {channel} that {text}.",
        "tell {channel} {text}, and mention {mentions}.",
        "write to {channel}: {text}.",
    )),
    Tool("play_song", "Play a song.", {
        "title": P("str", "Song title.", v.pick(v.SONGS)),
        "artist": P("str, optional", "Artist.", v.pick(v.ARTISTS), ""),
        "shuffle": P("bool, optional", "Shuffle afterwards.", lambda rng: True, False),
    }, (
        "play {title}.",
        "put on {title} by {artist}.",
        "play {title} and then shuffle.{shuffle}",
    )),
    Tool("create_playlist", "Make a playlist from songs.", {
        "name": P("str", "Playlist name.", v.pick(v.PLAYLIST_NAMES)),
        "songs": P("List[str]", "Song titles.", v.sample(v.SONGS, 2, 4), say=v.and_list),
        "public": P("bool, optional", "Visible to others.", lambda rng: True, False),
    }, (
        "make a playlist called {name} with {songs}.",
        "create a public playlist named {name} containing {songs}.{public}",
    )),
    Tool("find_recipes", "Recipes that use given ingredients.", {
        "ingredients": P("List[str]", "Ingredients on hand.", v.sample(v.INGREDIENTS, 1, 3), say=v.and_list),
        "max_minutes": P("int, optional", "Max cooking time.", v.pick((15, 20, 30, 45)), 60),
        "diet": P("str, optional", "Dietary need.", v.pick(v.DIETS), ""),
    }, (
        "what can I cook with {ingredients}?",
        "find a recipe with {ingredients} that takes under {max_minutes} minutes.",
        "I need a {diet} recipe using {ingredients}.",
    )),
    Tool("scale_recipe", "Rescale a recipe's quantities.", {
        "recipe_name": P("str", "Recipe.", v.pick(v.RECIPES)),
        "servings": P("int", "Servings wanted.", v.ints(2, 12)),
    }, (
        "scale my {recipe_name} recipe to {servings} servings.",
        "I'm cooking {recipe_name} for {servings} people, adjust the quantities.",
    )),
    Tool("get_match_result", "Latest or dated result of a team's match.", {
        "team": P("str", "Team name.", v.pick(v.TEAMS)),
        "date": P("str, optional", "Match date, YYYY-MM-DD.", v.day, ""),
    }, (
        "how did {team} do in their last game?",
        "what was the score of the {team} match on {date}?",
        "did {team} win yesterday?",
    )),
    Tool("league_standings", "League table for a season.", {
        "league": P("str", "League name.", v.pick(v.LEAGUES)),
        "season": P("int, optional", "Season year.", v.pick((2021, 2022, 2023)), 2024),
    }, (
        "show the {league} table.",
        "who topped the {league} in {season}?",
        "standings of the {league}, season {season}.",
    )),
    Tool("set_reminder", "Create a reminder.", {
        "text": P("str", "What to remember.", v.pick(v.REMINDERS)),
        "time": P("str", "Time, HH:MM.", v.clock),
        "date": P("str, optional", "Date, YYYY-MM-DD; today if empty.", v.day, ""),
        "repeat": P("str, optional", "never, daily, weekly or monthly.", v.pick(v.REPEATS), "never"),
    }, (
        "remind me to {text} at {time}.",
        "set a reminder for {date} at {time} to {text}.",
        "remind me {repeat} at {time} to {text}.",
    )),
    Tool("start_timer", "Start a countdown timer.", {
        "minutes": P("int", "Duration in minutes.", v.ints(1, 90)),
        "label": P("str, optional", "Label.", v.pick(v.TIMER_LABELS), ""),
    }, (
        "set a timer for {minutes} minutes.",
        "start a {minutes} minute {label} timer.",
        "countdown of {minutes} minutes, please.",
    )),
    Tool("count_words", "Count the words in a text.", {
        "text": P("str", "The text.", v.pick(v.TEXTS)),
    }, (
        "how many words are in \"{text}\"?",
        "count the words in this: {text}",
    )),
    Tool("slugify_text", "Turn a title into a URL slug.", {
        "text": P("str", "The title.", v.pick(v.TEXTS)),
        "separator": P("str, optional", "Word separator.", v.pick(("_", ".")), "-"),
    }, (
        "make a URL slug from \"{text}\".",
        "slugify \"{text}\" using \"{separator}\" between words.",
    )),
    Tool("geo_distance", "Straight-line distance between two cities.", {
        "origin_city": P("str", "First city.", v.pick(v.CITIES)),
        "destination_city": P("str", "Second city.", v.pick(v.CITIES)),
        "unit": P("str, optional", "km or miles.", lambda rng: "miles", "km"),
    }, (
        "how far is {origin_city} from {destination_city}?",
        "distance between {origin_city} and {destination_city} in {unit}?",
        "how many kilometres from {origin_city} to {destination_city}?",
    ), joint=v.two_cities),
    Tool("find_nearby_places", "Places of a kind near coordinates.", {
        "location": P("Dict[str, Any]", "Point with lat and lon.", v.location, say=v.say_location),
        "category": P("str", "Kind of place.", v.pick(v.PLACE_KINDS)),
        "radius_km": P("float, optional", "Search radius.", v.pick((0.5, 2.0, 5.0)), 1.0),
    }, (
        "find a {category} near {location}.",
        "any {category} within {radius_km} km of {location}?",
    )),
    Tool("update_contact", "Change fields of a saved contact.", {
        "contact_name": P("str", "Contact's full name.", lambda rng: f"{rng.choice(v.NAMES)} {rng.choice(v.SURNAMES)}"),
        "fields": P("Dict[str, Any]", "Fields to change.", v.contact_fields, say=v.say_fields),
    }, (
        "update {contact_name}: set {fields}.",
        "change {contact_name}'s {fields}.",
    )),
    Tool("generate_password", "Generate a random password.", {
        "length": P("int", "Number of characters.", v.pick((12, 16, 20, 24, 32))),
        "include_symbols": P("bool, optional", "Use symbols.", lambda rng: False, True,
                             say=lambda v: "with symbols" if v else "without symbols"),
    }, (
        "generate a {length}-character password.",
        "make me a password of length {length}, {include_symbols}.",
    )),
    Tool("convert_timezone", "Convert a clock time between time zones.", {
        "time": P("str", "Time, HH:MM.", v.clock),
        "from_zone": P("str", "IANA zone of the time.", v.pick(v.ZONES)),
        "to_zone": P("str", "IANA zone wanted.", v.pick(v.ZONES)),
    }, (
        "what time is {time} {from_zone} in {to_zone}?",
        "convert {time} from {from_zone} to {to_zone}.",
    ), joint=v.two_zones),
    Tool("days_between", "Number of days between two dates.", {
        "start_date": P("str", "First date, YYYY-MM-DD.", v.day),
        "end_date": P("str", "Second date, YYYY-MM-DD.", v.day),
    }, (
        "how many days from {start_date} to {end_date}?",
        "count the days between {start_date} and {end_date}.",
    ), joint=v.date_range),
    Tool("reserve_table", "Reserve a restaurant table.", {
        "restaurant": P("str", "Restaurant name.", v.pick(v.RESTAURANTS)),
        "date": P("str", "Date, YYYY-MM-DD.", v.day),
        "time": P("str", "Time, HH:MM.", v.clock),
        "party_size": P("int", "Number of guests.", v.ints(1, 10)),
    }, (
        "book a table for {party_size} at {restaurant} on {date} at {time}.",
        "reserve {restaurant} for {party_size} people, {date} {time}.",
    )),
    Tool("detect_language", "Identify the language a text is written in.", {
        "text": P("str", "The text.", v.pick(v.FOREIGN_TEXTS)),
    }, (
        "what language is \"{text}\"?",
        "which language is this: {text}",
        "detect the language of \"{text}\".",
    )),
    Tool("search_news", "Latest news articles on a topic.", {
        "topic": P("str", "What the news is about.", v.pick(v.NEWS_TOPICS)),
        "language": P("str, optional", "Language of the articles.", v.pick(v.LANGUAGES), "English"),
        "max_results": P("int, optional", "Number of articles.", v.pick((3, 5, 8)), 10),
    }, (
        "any news about {topic}?",
        "find the latest {max_results} articles on {topic}.",
        "show me news on {topic} in {language}.",
        "what's new with {topic}? Articles in {language}, please.",
    )),
    Tool("plot_function", "Plot y = f(x) over an interval.", {
        "expression": P("str", "f(x) in Python syntax.", v.pick(v.EXPRESSIONS)),
        "x_min": P("int", "Left end of the interval.", v.ints(-10, 0)),
        "x_max": P("int", "Right end of the interval.", v.ints(1, 10)),
    }, (
        "plot {expression} from {x_min} to {x_max}.",
        "draw the graph of y = {expression} for x between {x_min} and {x_max}.",
        "can you graph {expression} on [{x_min}, {x_max}]?",
    )),
    Tool("simplify_expression", "Simplify an algebraic expression.", {
        "expression": P("str", "The expression in Python syntax.", v.pick(v.EXPRESSIONS)),
    }, (
        "simplify {expression}.",
        "can you simplify the expression {expression}?",
        "what is {expression} in its simplest form?",
    )),
    Tool("get_crypto_price", "Current price of a cryptocurrency.", {
        "coin": P("str", "Coin symbol, e.g. 'BTC'.", v.pick(v.COINS)),
        "currency": P("str, optional", "ISO code of the price currency.", v.pick(v.CURRENCIES), "USD"),
    }, (
        "what's {coin} trading at?",
        "price of {coin} in {currency}?",
        "how much is one {coin} worth right now?",
    )),
    Tool("get_company_profile", "Company facts for a stock ticker.", {
        "ticker": P("str", "Ticker symbol.", v.pick(v.TICKERS)),
    }, (
        "tell me about the company with ticker {ticker}.",
        "which company trades as {ticker}?",
        "company profile for {ticker}, please.",
    )),
    Tool("create_note", "Save a note.", {
        "title": P("str", "Note title.", v.pick(v.NOTE_TITLES)),
        "body": P("str", "Note text.", v.pick(v.NOTE_BODIES)),
        "pinned": P("bool, optional", "Keep it at the top.", lambda rng: True, False),
    }, (
        "make a note titled '{title}' that says '{body}'.",
        "save a note called {title} with the text: {body}.",
        "new note, title {title}, body: {body}.",
        "jot down '{body}' under the title '{title}' and pin it.{pinned}",
    )),
    Tool("set_subtitles", "Turn on subtitles in a language for a video.", {
        "video_title": P("str", "Title of the video.", v.pick(v.VIDEOS)),
        "language": P("str", "Subtitle language.", v.pick(v.LANGUAGES)),
    }, (
        "turn on {language} subtitles for {video_title}.",
        "switch the subtitles of {video_title} to {language}.",
        "I want to watch {video_title} with subtitles in {language}.",
    )),
    Tool("share_file", "Share a file with someone by email.", {
        "path": P("str", "File path.", lambda rng: f"{rng.choice(v.FOLDERS)}/{rng.choice(v.FILES)}"),
        "email": P("str", "Email address of the person.", v.email),
        "permission": P("str, optional", "'view' or 'edit'.", lambda rng: "edit", "view"),
    }, (
        "share {path} with {email}.",
        "give {email} {permission} access to {path}.",
        "send {email} a link to {path} with {permission} rights.",
    )),
)

# A flag-like optional (e.g. shuffle) is named by a template with an empty placeholder at the end.
SILENT_BOOLS = frozenset({("search_train_times", "first_class"), ("play_song", "shuffle"),
                          ("create_playlist", "public"), ("create_note", "pinned")})

SCHEMAS = {t.name: t.schema() for t in TOOLS}
TOOL_NAMES = tuple(t.name for t in TOOLS)  # catalogue order, which seeds draw by


def tool_catalogue() -> list[dict[str, Any]]:
    """Every tool schema, xlam style: `{name, description, parameters: {p: {description, type, default?}}}`."""
    return [copy.deepcopy(SCHEMAS[name]) for name in TOOL_NAMES]
