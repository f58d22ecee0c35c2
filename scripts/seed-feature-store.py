#!/usr/bin/env python3
"""Seeds the example online feature store (PostgreSQL) that the `recommend` pipeline reads:

    scripts/seed-feature-store.py --port PORT [--host 127.0.0.1] [--user fulcrum] [--database features]

Creates the database if missing, then the tables `user_features(user_id bigint primary key,
features real[])` (32 values per user) and `item_features(item_id bigint primary key, features
real[])` (64 per item), filled with deterministic vectors for users 1..USERS and items 1..ITEMS
(`vectors()` below, which tests use as the reference). Uses the `psql` client; no Python driver.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np

USERS, ITEMS = 1000, 5000
USER_WIDTH, ITEM_WIDTH = 32, 64
SEED = 20261207


def vectors() -> tuple[np.ndarray, np.ndarray]:
    """Row i of each array is the vector of id i + 1."""
    rng = np.random.default_rng(SEED)
    users = rng.standard_normal((USERS, USER_WIDTH)).astype(np.float32)
    items = rng.standard_normal((ITEMS, ITEM_WIDTH)).astype(np.float32)
    return users, items


def psql(args, sql: str, database: str) -> None:
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", args.host, "-p", str(args.port),
               "-U", args.user, "-d", database]
    subprocess.run(command, input=sql.encode(), check=True, stdout=subprocess.DEVNULL)


def copy_rows(name: str, key: str, matrix: np.ndarray) -> str:
    lines = [f"DROP TABLE IF EXISTS {name};",
             f"CREATE TABLE {name} ({key} bigint PRIMARY KEY, features real[] NOT NULL);",
             f"COPY {name} ({key}, features) FROM STDIN;"]
    for i, row in enumerate(matrix):
        lines.append(f"{i + 1}\t{{{','.join(repr(float(v)) for v in row)}}}")
    lines.append("\\.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="fulcrum")
    parser.add_argument("--database", default="features")
    args = parser.parse_args(argv)
    exists = subprocess.run(
        ["psql", "-X", "-tA", "-h", args.host, "-p", str(args.port), "-U", args.user, "-d", "postgres", "-c",
         f"SELECT 1 FROM pg_database WHERE datname = '{args.database}'"],
        check=True, capture_output=True).stdout.strip()
    if not exists:
        psql(args, f'CREATE DATABASE "{args.database}";', "postgres")
    users, items = vectors()
    psql(args, "SET client_min_messages = warning;\nBEGIN;\n" + copy_rows("user_features", "user_id", users) + copy_rows("item_features", "item_id", items) + "COMMIT;\n",
         args.database)
    print(f"seeded {args.database}: {USERS} users × {USER_WIDTH}, {ITEMS} items × {ITEM_WIDTH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
