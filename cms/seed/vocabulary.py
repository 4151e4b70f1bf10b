"""Word lists the demo data is drawn from: names, places, airlines, phrases.

Names are varied on purpose (accents, apostrophes, hyphens, several scripts' romanizations) so
search folding and rendering are exercised by ordinary demo data. Phone numbers and e-mail domains
use ranges reserved for fiction and documentation, so no real person is ever contacted.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "James", "Olivia", "Liam", "Emma", "Noah", "Sophie", "Oliver", "Amelia", "Harry", "Isla",
    "José", "María", "Lucía", "Álvaro", "Inés", "Tomás", "Mateo", "Carmen", "Sofía", "Ángel",
    "Zoë", "Chloé", "François", "Hélène", "Anaïs", "Noémie", "Renée", "Maëlle", "Léa", "Jérôme",
    "Jürgen", "Günther", "Lena", "Lukas", "Felix", "Anna", "Katharina", "Jonas", "Mia", "Paul",
    "Søren", "Björn", "Åsa", "Freja", "Magnus", "Ingrid", "Sigrid", "Mikael", "Elin", "Astrid",
    "Łukasz", "Małgorzata", "Zoltán", "Dorota", "Jiří", "Tereza", "Ivana", "Dmitri", "Olga", "Nikola",
    "Giulia", "Lorenzo", "Francesca", "Matteo", "Chiara", "Marco", "Alessia", "Nuno", "João", "Inês",
    "Siobhán", "Niamh", "Seán", "Aoife", "Ciarán", "Sarah", "Michael", "Emily", "David", "Grace",
    "Aarav", "Priya", "Ananya", "Rohan", "Wei", "Mei", "Yuki", "Hiroshi", "Haruto", "Ji-woo",
    "Fatima", "Omar", "Layla", "Yusuf", "Amara", "Kwame", "Chidi", "Nia", "Thabo", "Zanele",
)

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Walker", "Wright", "Hughes",
    "García", "Fernández", "López", "Martínez", "González", "Núñez", "Jiménez", "Hernández", "Ruiz",
    "Dubois", "Lefèvre", "Martin", "Bernard", "Moreau", "Girard", "Bonnet", "Rousseau", "Fontaine",
    "Müller", "Schmidt", "Schäfer", "Schneider", "Fischer", "Weiß", "Köhler", "Becker", "Hoffmann",
    "Andersson", "Johansson", "Jensen", "Nielsen", "Hansen", "Lindqvist", "Østergaard", "Virtanen",
    "Kowalski", "Nowak", "Wiśniewska", "Novák", "Dvořák", "Horváth", "Nagy", "Ivanov", "Petrova",
    "Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Silva", "Santos", "Pereira", "Costa", "Gonçalves",
    "O'Brien", "Murphy", "Kelly", "Walsh", "McCarthy", "Fitzgerald", "O'Connor", "Ó Súilleabháin",
    "van der Berg", "De Vries", "Jansen", "Bakker", "Papadopoulos", "Yılmaz", "Öztürk", "Demir",
    "Patel", "Shah", "Khan", "Singh", "Chen", "Wang", "Nguyen", "Tran", "Tanaka", "Suzuki", "Kim",
    "Park", "Okafor", "Mensah", "Dlamini", "Haddad", "Mansour", "Cohen", "Levi", "Smith-Jones",
)

EMAIL_DOMAINS: tuple[str, ...] = (
    "example.com", "example.org", "example.net", "mail.example", "inbox.example", "post.example",
)

# (country code, trunk prefixes, subscriber digits): ranges reserved for drama or documentation
# where the country has one (UK 20 7946 0xxx, North America 555-01xx).
PHONE_PLANS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("44", ("20 7946 0",), 3),
    ("1", ("212 555 01", "415 555 01", "617 555 01"), 2),
    ("49", ("30 9900 ", "89 9900 "), 4),
    ("33", ("1 99 00 ",), 4),
    ("34", ("91 999 ",), 4),
    ("39", ("06 9999 ",), 4),
    ("353", ("1 699 ",), 4),
    ("31", ("20 999 ",), 4),
    ("46", ("8 999 ",), 4),
    ("351", ("21 999 ",), 4),
)

SEATS = ("aisle", "window")  # as the client form offers them
# IATA special-meal codes, as the client form takes them.
MEALS = ("VGML", "VLML", "HNML", "MOML", "KSML", "GFML", "DBML", "LSML")

CLIENT_NOTES: tuple[str, ...] = (
    "Prefers morning flights.",
    "Corporate account: invoice the company monthly.",
    "Needs wheelchair assistance at the airport.",
    "Travels with a service dog; check airline policy first.",
    "Always books lounge access on long-haul trips.",
    "Allergic to nuts: request a special meal.",
    "Likes to be called on the mobile, not by e-mail.",
    "Frequent traveller to Lisbon for work.",
    "Passport renewal due next spring.",
    "Prefers to avoid connections through CDG.",
)

BOOKING_NOTES: tuple[str, ...] = (
    "Seat 12A requested.",
    "Awaiting passport details for all passengers.",
    "Client asked for a quote with flexible fares.",
    "Extra baggage added on the outbound flight.",
    "Honeymoon: request adjacent seats.",
    "Paid by company card.",
)

DEMO_NOTES: tuple[str, ...] = (
    "Called about the autumn trip; wants an aisle seat and a later return.",
    "Sent the revised itinerary by e-mail; waiting for confirmation.",
    "Asked to hold two seats until Friday.",
    "Visa requirements explained; client will send passport scans.",
)

# IATA code -> region. "EU" airports get low-cost carriers on short trips.
AIRPORTS: dict[str, str] = {
    "LHR": "EU", "LGW": "EU", "MAN": "EU", "EDI": "EU", "DUB": "EU", "CDG": "EU", "ORY": "EU",
    "NCE": "EU", "FRA": "EU", "MUC": "EU", "BER": "EU", "AMS": "EU", "BRU": "EU", "MAD": "EU",
    "BCN": "EU", "PMI": "EU", "AGP": "EU", "LIS": "EU", "OPO": "EU", "FCO": "EU", "MXP": "EU",
    "ZRH": "EU", "GVA": "EU", "VIE": "EU", "CPH": "EU", "ARN": "EU", "OSL": "EU", "HEL": "EU",
    "PRG": "EU", "BUD": "EU", "WAW": "EU", "KRK": "EU", "ATH": "EU", "IST": "EU",
    "JFK": "NA", "EWR": "NA", "BOS": "NA", "ORD": "NA", "ATL": "NA", "MIA": "NA", "LAX": "NA",
    "SFO": "NA", "SEA": "NA", "YYZ": "NA", "DXB": "ME", "DOH": "ME", "GRU": "SA", "EZE": "SA",
    "NRT": "AS", "HND": "AS", "SIN": "AS", "HKG": "AS", "BKK": "AS", "DEL": "AS", "BOM": "AS",
    "SYD": "OC", "MEL": "OC", "CPT": "AF", "JNB": "AF",
}
HOME_AIRPORTS = ("LHR", "LGW", "MAN", "DUB", "CDG", "FRA", "MUC", "AMS", "MAD", "BCN", "LIS", "FCO")

NETWORK_CARRIERS = ("BA", "LH", "AF", "KL", "IB", "AA", "UA", "DL", "EK", "QR")
LOW_COST_CARRIERS = ("U2", "FR")
