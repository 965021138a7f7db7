#!/usr/bin/env python3
"""Setup of scripts/bench-rights.sh, against `custos serve --demo` at URL with its keys in
KEYS_FILE: PEOPLE people through the website (20 values each, over eight roles) with RECORDS
records each; then each person signed in (the code read from the .eml outbox in DATA); and
ERASABLE more people, each with a verified erasure request staff entered. Writes
`sessions.txt` (one session per line), `requests.txt` (one verified request id per line)
into OUT. Standard library only."""
import glob
import json
import os
import re
import sys
import time
import urllib.request

URL, KEYS_FILE, DATA, OUT = sys.argv[1:5]
PEOPLE, RECORDS, ERASABLE = (int(x) for x in sys.argv[5:8])
keys = dict(l.split(": ", 1) for l in open(KEYS_FILE).read().split("\n") if ": " in l)
WEB, ADMIN = keys["website"].strip(), keys["admin"].strip()
NOTICE = "2010-04-24"


def call(method, path, key=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def patient(method, path, body):
    """A sign-in call, waited out while the per-client rate limit answers 429."""
    while True:
        status, answer = call(method, path, None, body)
        if status != 429:
            return status, answer
        time.sleep(1)


def must(status, body, want):
    if status != want:
        sys.exit(f"setup: expected {want}, got {status}: {body}")
    return body


# What each website role adds, and a purpose it states: 12 + 2 + 2 + 4 = 20 values.
MORE = [
    ("customer", ["order"], {"payment.card_number": "4111111111111111", "order.details": "1 x Meeting Center, annual"}),
    ("visitor", ["personalization"], {"network.ip_address": "198.51.100.20", "beacon.identifier": "b-7f3a"}),
    ("survey-participant", ["surveys"], {"survey.responses": "{\"q1\":4}"}),
    ("sweepstakes-entrant", ["promotions"], {"promotion.entries": "spring draw"}),
    ("forum-participant", ["forums"], {"forum.posts": "how do I share my screen?"}),
    ("applicant", ["recruitment"], {"recruitment.inquiry": "engineering, Santa Clara"}),
]


def person(i, tag):
    email = f"bench-{tag}-{i}@example.com"
    base = {
        "contact.name": f"Bench Person {i}", "contact.email": email,
        "contact.postal_address": f"{i} Example Way", "contact.phone": "+1 555 0100",
        "contact.title": "Engineer", "contact.company": "Acme", "contact.department": "R&D",
        "person.age": "30", "profile.interests": "video", "usage.clickstream": "/home",
        "cookie.identifier": f"c-{i}", "support.case": "none",
    }
    sid = must(*call("POST", "/v1/subjects", WEB, {
        "service": "website", "role": "account-holder", "purposes": ["account"],
        "notice": NOTICE, "age": 30, "data": base}), 201)["subject"]
    return sid, email


os.makedirs(OUT, exist_ok=True)
people = []
for i in range(PEOPLE):
    sid, email = person(i, "x")
    for role, purposes, data in MORE:
        must(*call("POST", f"/v1/subjects/{sid}/data", WEB, {
            "service": "website", "role": role, "purposes": purposes, "notice": NOTICE,
            "data": data}), 201)
    for start in range(0, RECORDS, 1000):
        n = min(1000, RECORDS - start)
        must(*call("POST", f"/v1/subjects/{sid}/records", WEB, {
            "collection": "account_activity", "purposes": ["account"],
            "values": [json.dumps({"action": f"login {start + k}", "ip_address": "198.51.100.20"}) for k in range(n)]}), 201)
    people.append((sid, email))

sessions = []
for sid, email in people:
    must(*patient("POST", "/v1/people/sign-in", {"email": email}), 202)
    code = None
    for _ in range(100):
        for f in sorted(glob.glob(os.path.join(DATA, "outbox", "*.eml")), key=os.path.getmtime, reverse=True):
            text = open(f).read()
            if f"To: {email}\r\n" in text or f"To: {email}\n" in text:
                code = re.search(r"code is (\d+)", text).group(1)
                break
        if code:
            break
        time.sleep(0.1)
    if not code:
        sys.exit(f"setup: no code mailed to {email}")
    s = must(*patient("POST", "/v1/people/sign-in/verify", {"email": email, "code": code}), 200)
    sessions.append(s["session"])
open(os.path.join(OUT, "sessions.txt"), "w").write("\n".join(sessions) + "\n")

requests = []
for i in range(ERASABLE):
    sid, _ = person(i, "e")
    r = must(*call("POST", "/v1/requests", ADMIN, {
        "kind": "erase", "subject": sid, "channel": "email",
        "verification": "email_from_address_on_file"}), 201)["request"]
    must(*call("POST", f"/v1/requests/{r}/verify", ADMIN, {}), 200)
    requests.append(r)
open(os.path.join(OUT, "requests.txt"), "w").write("\n".join(requests) + "\n")
print(f"setup: {len(people)} people of 20 values and {RECORDS} records, signed in; {len(requests)} verified erasure requests")
