"""Validates weft's answers against GitBook's own OpenAPI document.

    python3 gitbook_schemas.py OPENAPI_JSON ANSWERS_JSON

ANSWERS_JSON is a list of checks, each either an answer of an endpoint
    {"method": "GET", "path": "/integrations/{integrationName}", "status": 200, "body": {...}}
(`path` as the document spells it, without `/v1`), validated against that operation's
response schema for that status, or a value and a schema of the document
    {"schema": "Event", "body": {...}, "label": "the event a module received"}.

Prints one line per check and every mismatch with the place in the answer; exits 1 if any
check fails, 2 if a check names something the document does not have.
"""

import json
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:gitbook:openapi"


def main(document_path: str, answers_path: str) -> int:
    with open(document_path, encoding="utf-8") as file:
        document = json.load(file)
    with open(answers_path, encoding="utf-8") as file:
        checks = json.load(file)
    registry = Registry().with_resource(DOCUMENT_URI, Resource(contents=document, specification=DRAFT202012))

    failures = 0
    for check in checks:
        label, schema = schema_of(document, check)
        validator = Draft202012Validator({"$ref": f"{DOCUMENT_URI}{schema}"}, registry=registry)
        errors = sorted(validator.iter_errors(check["body"]), key=lambda error: list(error.absolute_path))
        if errors:
            failures += 1
            print(f"FAIL {label}")
            for error in errors[:20]:
                place = "/".join(str(part) for part in error.absolute_path) or "(the answer)"
                print(f"    at {place}: {describe(error)}")
        else:
            print(f"ok   {label}")
    print(f"{len(checks) - failures} passed, {failures} failed")
    return 1 if failures else 0


def schema_of(document: dict, check: dict) -> tuple[str, str]:
    """The check's label and the JSON pointer (within the document) of its schema."""
    if "schema" in check:
        name = check["schema"]
        if name not in document["components"]["schemas"]:
            raise SystemExit(f"the document has no schema `{name}`")
        return f"{check.get('label', name)} is a {name}", f"#/components/schemas/{name}"
    method, path, status = check["method"].lower(), check["path"], str(check["status"])
    operation = document["paths"].get(path, {}).get(method)
    if operation is None:
        print(f"the document has no operation {method.upper()} {path}")
        sys.exit(2)
    if status not in operation.get("responses", {}):
        print(f"{method.upper()} {path} answers no {status} in the document")
        sys.exit(2)
    escaped = path.replace("~", "~0").replace("/", "~1")
    pointer = f"#/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"
    return f"{method.upper()} {path} {status}", pointer


def describe(error) -> str:
    """A short message: which alternative failed where, for oneOf/anyOf."""
    if error.context:
        deepest = max(error.context, key=lambda sub: len(list(sub.absolute_path)))
        place = "/".join(str(part) for part in deepest.absolute_path)
        return f"{error.message[:160]} (closest: at {place}: {deepest.message[:200]})"
    return error.message[:300]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
