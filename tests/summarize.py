#!/usr/bin/env python3
"""Sums ctest JUnit files and the fuzz result list into one closing line."""
import pathlib
import sys
import xml.etree.ElementTree as ET

results = pathlib.Path(sys.argv[1])
passed = failed = skipped = 0
failures = []
for stage in ("main", "asan"):
    path = results / f"{stage}.xml"
    if not path.exists():
        failed += 1
        failures.append(f"{stage}: no ctest results (build or ctest failed)")
        continue
    for case in ET.parse(path).getroot().iter("testcase"):
        status = case.get("status", "run")
        name = f"{stage}: {case.get('name')}"
        if case.find("failure") is not None or status == "fail":
            failed += 1
            failures.append(name)
        elif case.find("skipped") is not None or status in ("notrun", "disabled"):
            skipped += 1
        else:
            passed += 1
fuzz = results / "fuzz.txt"
for line in fuzz.read_text().splitlines() if fuzz.exists() else []:
    verdict, name = line.split(" ", 1)
    if verdict == "PASS":
        passed += 1
    else:
        failed += 1
        failures.append(f"fuzz: {name}")
for f in failures:
    print(f"FAILED {f}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
