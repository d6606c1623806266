"""Deterministic customer records from several sources with known duplicate clusters.

Each of ``n_entities`` people appears 1-4 times across the sources ``crm``, ``web``, ``billing`` and
``support``. Copies differ the way real sources do: typos (swap, drop, replace a letter), street-type and state
abbreviations (``Street``/``St``), nicknames (``Robert``/``Bob``), missing fields, first and last name swapped,
phone and date formats, e-mail case. ``full_text`` renders the record as one free-text line with field order and
formatting varied per source (e.g. ``"Doe, John - 12 Main St, Springfield IL 62701 - john.doe@example.com"``).

Schema (all strings unless noted; missing values are None):

| column | meaning |
| --- | --- |
| record_id | unique id, ``<source>-<n>`` |
| source | crm / web / billing / support |
| first_name, last_name | names as the source has them |
| street, city, postcode, state | address |
| phone | phone number in the source's format |
| email | e-mail address |
| date_of_birth | date in the source's format |
| updated_at | datetime64[ns, UTC]: when the source last changed the record |
| full_text | the record as one line of free text |
| true_cluster_id | int64 ground truth: records of the same person share it |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FIRST_NAMES = {
    "Robert": ["Bob", "Rob", "Bobby"], "William": ["Bill", "Will", "Billy"], "Elizabeth": ["Liz", "Beth", "Eliza"],
    "Katherine": ["Kate", "Kathy", "Katie"], "Michael": ["Mike", "Mick"], "Jennifer": ["Jen", "Jenny"],
    "James": ["Jim", "Jimmy"], "Margaret": ["Maggie", "Peggy", "Meg"], "Richard": ["Rick", "Dick", "Rich"],
    "Patricia": ["Pat", "Patty", "Trish"], "Thomas": ["Tom", "Tommy"], "Susan": ["Sue", "Suzy"],
    "Charles": ["Charlie", "Chuck"], "Jessica": ["Jess", "Jessie"], "Christopher": ["Chris", "Topher"],
    "Deborah": ["Deb", "Debbie"], "Daniel": ["Dan", "Danny"], "Nancy": ["Nan"], "Matthew": ["Matt"],
    "Rebecca": ["Becky", "Becca"], "Anthony": ["Tony"], "Samantha": ["Sam", "Sammy"], "Joseph": ["Joe", "Joey"],
    "Victoria": ["Vicky", "Tori"], "Andrew": ["Andy", "Drew"], "Alexandra": ["Alex", "Sasha"],
    "Steven": ["Steve"], "Dorothy": ["Dot", "Dottie"], "Edward": ["Ed", "Eddie", "Ted"], "Abigail": ["Abby"],
    "Olivia": [], "Noah": [], "Emma": [], "Liam": [], "Sophia": [], "Lucas": [], "Mia": [], "Ethan": [],
    "Amelia": [], "Mason": [], "Harper": [], "Logan": [], "Evelyn": [], "Aiden": [], "Chloe": [], "Ryan": [],
    "Zoe": [], "Nathan": [], "Grace": [], "Isaac": [], "Hannah": [], "Owen": [], "Aria": [], "Caleb": [],
    "Lily": [], "Dylan": [], "Nora": [], "Hunter": [], "Layla": [], "Adrian": [], "Ruby": [], "Jonah": [],
}
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams",
    "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips",
    "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales",
    "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly",
    "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James",
    "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers",
    "Long", "Ross", "Foster", "Jimenez", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman",
    "Butler", "Henderson", "Barnes", "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson",
    "Alexander", "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes",
    "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro",
    "Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods", "Washington", "Kennedy", "Wells",
    "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker", "Guzman", "Burns", "Crawford", "Olson", "Simpson",
]
STREET_NAMES = [
    "Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Sunset", "Lincoln",
    "Jackson", "Church", "River", "Highland", "Meadow", "Forest", "Spring", "Ridge", "Willow", "Chestnut",
    "Franklin", "Jefferson", "Madison", "Adams", "Walnut", "Birch", "Valley", "Mill", "Center", "Union",
]
STREET_TYPES = {"Street": "St", "Avenue": "Ave", "Road": "Rd", "Boulevard": "Blvd", "Drive": "Dr",
                "Lane": "Ln", "Court": "Ct", "Place": "Pl", "Terrace": "Ter"}
CITIES = [
    ("Springfield", "Illinois", "IL"), ("Portland", "Oregon", "OR"), ("Austin", "Texas", "TX"),
    ("Denver", "Colorado", "CO"), ("Madison", "Wisconsin", "WI"), ("Columbus", "Ohio", "OH"),
    ("Raleigh", "North Carolina", "NC"), ("Boise", "Idaho", "ID"), ("Richmond", "Virginia", "VA"),
    ("Albany", "New York", "NY"), ("Phoenix", "Arizona", "AZ"), ("Nashville", "Tennessee", "TN"),
    ("Salem", "Massachusetts", "MA"), ("Tampa", "Florida", "FL"), ("Fresno", "California", "CA"),
    ("Omaha", "Nebraska", "NE"), ("Tulsa", "Oklahoma", "OK"), ("Reno", "Nevada", "NV"),
]
EMAIL_DOMAINS = ["example.com", "mail.com", "inbox.org", "post.net", "webmail.io"]
SOURCES = ("crm", "web", "billing", "support")


def _typo(rng: np.random.Generator, word: str) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(3)
    if kind == 0:  # transpose
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:  # drop
        return word[:i] + word[i + 1 :]
    return word[:i] + "aeiourstnl"[int(rng.integers(10))] + word[i + 1 :]


def _entity(rng: np.random.Generator, k: int) -> dict:
    first = list(FIRST_NAMES)[int(rng.integers(len(FIRST_NAMES)))]
    last = LAST_NAMES[int(rng.integers(len(LAST_NAMES)))]
    city, state_long, state = CITIES[int(rng.integers(len(CITIES)))]
    stype = list(STREET_TYPES)[int(rng.integers(len(STREET_TYPES)))]
    dob = pd.Timestamp("1945-01-01") + pd.Timedelta(days=int(rng.integers(0, 365 * 60)))
    digits = "".join(str(d) for d in rng.integers(0, 10, 10))
    digits = str(int(rng.integers(2, 10))) + digits[1:]
    sep = [".", "_", ""][int(rng.integers(3))]
    return {
        "first_name": first, "last_name": last,
        "number": int(rng.integers(1, 9999)), "street_name": STREET_NAMES[int(rng.integers(len(STREET_NAMES)))],
        "street_type": stype, "unit": int(rng.integers(1, 40)) if rng.random() < 0.15 else None,
        "city": city, "state": state, "state_long": state_long,
        "postcode": f"{int(rng.integers(10000, 99999))}", "phone": digits, "dob": dob,
        "email": f"{first.lower()}{sep}{last.lower()}{int(rng.integers(1, 99)) if rng.random() < 0.5 else ''}"
                 f"@{EMAIL_DOMAINS[int(rng.integers(len(EMAIL_DOMAINS)))]}",
        "cluster": k,
    }


def _render(rng: np.random.Generator, e: dict, source: str, is_copy: bool) -> dict:
    """One source's version of an entity: formatting per source, corruption on copies."""
    first, last = e["first_name"], e["last_name"]
    street_type = e["street_type"]
    if is_copy and rng.random() < 0.5:
        street_type = STREET_TYPES[street_type]
    street = f"{e['number']} {e['street_name']} {street_type}"
    if e["unit"]:
        street += f" Apt {e['unit']}" if rng.random() < 0.5 else f" #{e['unit']}"
    state = e["state"] if (source != "crm" or rng.random() < 0.5) else e["state_long"]
    p = e["phone"]
    phone = {"crm": f"({p[:3]}) {p[3:6]}-{p[6:]}", "web": f"{p[:3]}-{p[3:6]}-{p[6:]}",
             "billing": f"+1 {p[:3]} {p[3:6]} {p[6:]}", "support": p}[source]
    dob = e["dob"]
    date = {"crm": dob.strftime("%Y-%m-%d"), "web": dob.strftime("%m/%d/%Y"),
            "billing": dob.strftime("%d %b %Y"), "support": dob.strftime("%Y%m%d")}[source]
    email = e["email"]
    postcode, city = e["postcode"], e["city"]
    if is_copy:
        r = rng.random
        if r() < 0.3 and FIRST_NAMES[first]:
            first = FIRST_NAMES[first][int(rng.integers(len(FIRST_NAMES[first])))]
        if r() < 0.25:
            first = _typo(rng, first)
        if r() < 0.25:
            last = _typo(rng, last)
        if r() < 0.15:
            street = _typo(rng, street)
        if r() < 0.1:
            city = _typo(rng, city)
        if r() < 0.2:
            email = email.upper() if r() < 0.5 else email.replace("@", " @ ")
        if r() < 0.05:
            first, last = last, first
        if r() < 0.05:
            postcode = postcode[:4] + str((int(postcode[4]) + 1) % 10)
    rec = {"first_name": first, "last_name": last, "street": street, "city": city, "postcode": postcode,
           "state": state, "phone": phone, "email": email, "date_of_birth": date}
    if is_copy:  # missing fields
        for field in ("phone", "email", "date_of_birth", "street", "postcode"):
            if rng.random() < 0.12:
                rec[field] = None
    return rec


def _full_text(rng: np.random.Generator, rec: dict, source: str) -> str:
    name = f"{rec['first_name']} {rec['last_name']}"
    if source in ("billing", "support") and rng.random() < 0.5:
        name = f"{rec['last_name']}, {rec['first_name']}"
    addr_parts = [rec["street"], rec["city"], " ".join(x for x in (rec["state"], rec["postcode"]) if x)]
    address = ", ".join(x for x in addr_parts if x)
    parts = {"name": name, "address": address, "email": rec["email"], "phone": rec["phone"],
             "dob": f"born {rec['date_of_birth']}" if rec["date_of_birth"] else None}
    order = {"crm": ["name", "address", "email", "phone", "dob"], "web": ["name", "email", "address", "phone"],
             "billing": ["name", "phone", "address", "email", "dob"], "support": ["email", "name", "phone", "address"]}
    sep = {"crm": ", ", "web": " | ", "billing": " - ", "support": "; "}[source]
    return sep.join(parts[k] for k in order[source] if parts.get(k))


def generate_customers(n_entities: int = 2000, seed: int = 11, max_copies: int = 4) -> pd.DataFrame:
    """Generate customer records with known duplicate clusters (schema in the module docstring).

    Args:
        n_entities: Number of distinct people.
        seed: Random seed: the same arguments always give the same frame.
        max_copies: Most records one person can have (across sources).

    Returns:
        One row per record, in random order, with ``true_cluster_id`` as ground truth.
    """
    if n_entities < 1:
        raise ValueError("n_entities must be positive")
    rng = np.random.default_rng(seed)
    rows = []
    counters = dict.fromkeys(SOURCES, 0)
    base = pd.Timestamp("2026-01-01", tz="UTC")
    copy_weights = np.array([0.45, 0.3, 0.15, 0.1][:max_copies])
    for k in range(n_entities):
        e = _entity(rng, k)
        n_copies = 1 + int(rng.choice(len(copy_weights), p=copy_weights / copy_weights.sum()))
        sources = rng.choice(SOURCES, size=n_copies, replace=n_copies > len(SOURCES))
        for j, source in enumerate(sources):
            rec = _render(rng, e, str(source), is_copy=j > 0)
            counters[str(source)] += 1
            rows.append({
                "record_id": f"{source}-{counters[str(source)]:06d}", "source": str(source), **rec,
                "updated_at": base + pd.Timedelta(minutes=int(rng.integers(0, 60 * 24 * 300))),
                "full_text": _full_text(rng, rec, str(source)), "true_cluster_id": k,
            })
    frame = pd.DataFrame(rows)
    frame["true_cluster_id"] = frame["true_cluster_id"].astype("int64")
    order = rng.permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


def hold_back_latest(records: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off the most recently updated `share` of the records as later arrivals: (earlier, later)."""
    n_later = int(round(share * len(records)))
    later = records["updated_at"].rank(method="first").to_numpy() > len(records) - n_later
    return records[~later].reset_index(drop=True), records[later].reset_index(drop=True)
