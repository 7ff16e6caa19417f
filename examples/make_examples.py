#!/usr/bin/env python3
"""Writes the README's example files: customers.csv (this month) and customers-baseline.csv
(last month). Deterministic (seeded), stdlib only: python3 examples/make_examples.py"""
import csv
import os
import random

FIRST = ["Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Ava", "Elijah", "Sophia", "Lucas",
         "Mia", "Mateo", "Isabella", "Levi", "Chloe", "Hiro", "Fatima", "Wei", "Priya", "Carlos"]
LAST = ["Smith", "Johnson", "Garcia", "Brown", "Müller", "Rossi", "Kim", "Nguyen", "Patel", "Silva"]
PLANS = ["free", "basic", "pro", "enterprise"]
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR"]


def rows(seed, n, shift):
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}{i}@example.com".lower()
        if rng.random() < 0.05:
            email = "  " + email.upper() + " "          # messy case and spaces
        if rng.random() < 0.03:
            email = "not-an-email"
        phone = f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}" if rng.random() > 0.1 else ""
        age = int(rng.gauss(38 + shift, 11))
        if rng.random() < 0.01:
            age = 240                                      # an outlier
        spend = round(rng.lognormvariate(4 + shift / 20, 0.8), 2)
        plan = rng.choices(PLANS, weights=[5, 3, 2 + shift, 1])[0]
        signup = f"202{rng.randint(0, 5)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        out.append([1000 + i, f"{first} {last}", email, phone, age if rng.random() > 0.04 else "",
                    spend, plan, rng.choice(COUNTRIES), signup])
    out += [list(r) for r in out[:5]]                      # five exact duplicate rows
    return out


def write(path, data):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "full_name", "email", "phone", "age", "monthly_spend", "plan", "country",
                    "signup_date"])
        w.writerows(data)


here = os.path.dirname(os.path.abspath(__file__))
write(os.path.join(here, "customers.csv"), rows(7, 600, shift=4))
write(os.path.join(here, "customers-baseline.csv"), rows(3, 550, shift=0))
