#!/usr/bin/env python3
"""The hand-written baseline: Deskie's migration recipe (/work/shared/api/003, "Transfer your data
to Deskie using API") followed one request at a time, the way a short script would do it.

For every Desk360 product, every list page (following `Link: rel=next`), every ticket: read its
detail, create the case with its first message (recipe 1.1 Email / 2.1 Calls / 3.1 custom
channel), add every other message (1.2 / 2.2 / 3.2) or note, then set the final status and
priority with the edit method (1.3). A 429 is answered by sleeping `Retry-After` (Desk360) or
`retry_after` (Deskie) seconds and sending the same request again; nothing else is throttled,
nothing overlaps, nothing is journaled (a crash would duplicate cases: that is what the engine
adds). Routing is the benchmark's: Phone -> calls, Web -> custom:481, WhatsApp -> custom:482,
Facebook -> skipped, everything else -> email.

Usage: scripts/recipe-sequential.py CONFIG.toml   (the [source]/[target] a sandbox printed)
Prints one line: tickets, cases, requests, 429s, seconds. Python 3.11+ standard library only.
"""

import base64
import json
import sys
import time
import tomllib
import urllib.error
import urllib.request

STAFF = 100  # the benchmark's mapping.default_staff_id
ROUTES = {"Phone": "calls", "Web": "481", "WhatsApp": "482", "Facebook": "skip"}
STATUS = {0: "open", 1: "closed", 2: "waiting"}  # Desk360 status codes: open, resolved, waiting
PRIORITY = {0: "low", 1: "normal", 2: "high", 3: "critical"}  # low, medium, high, urgent

requests = 0
throttled = 0


def call(method, url, headers, body=None):
    """One request; on 429 sleeps what the server says and sends it again."""
    global requests, throttled
    data = None if body is None else json.dumps(body).encode()
    while True:
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        requests += 1
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"null"), r.headers
        except urllib.error.HTTPError as e:
            if e.code != 429:
                raise SystemExit(f"{method} {url}: HTTP {e.code} {e.read()[:300]!r}")
            throttled += 1
            wait = e.headers.get("Retry-After") or e.headers.get("retry_after") or "1"
            time.sleep(max(float(wait), 0.05))


def unwrap(v):
    if isinstance(v, dict) and "data" in v and "id" not in v:
        return v["data"]
    return v


def next_link(headers):
    for part in (headers.get("Link") or "").split(","):
        if 'rel="next"' in part or "rel=next" in part:
            return part.split(";")[0].strip().strip("<>")
    return None


def deskie_time(naive):
    # Desk360 sends naive times (the account is UTC in the benchmark); Deskie takes RFC 2822.
    t = time.strptime(naive[:19].replace("T", " "), "%Y-%m-%d %H:%M:%S")
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", t)


def main():
    with open(sys.argv[1], "rb") as f:
        cfg = tomllib.load(f)
    src, dst = cfg["source"], cfg["target"]
    d360 = {"Authorization": "Bearer " + src["token"], "Accept": "application/json"}
    auth = base64.b64encode(f"{dst['staff_email']}:{dst['api_key']}".encode()).decode()
    deskie = {"Authorization": "Basic " + auth, "Accept": "application/json"}
    api = dst["base_url"].rstrip("/") + "/api"
    base = src["base_url"].rstrip("/")

    started = time.monotonic()
    tickets = cases = 0
    products, _ = call("GET", f"{base}/v1/products", d360)
    for product in unwrap(products):
        url = f"{base}/v1/products/{product['id']}/tickets"
        while url:
            page, headers = call("GET", url, d360)
            for item in unwrap(page):
                detail, _ = call("GET", f"{base}/v1/products/{product['id']}/tickets/{item['id']}", d360)
                t = unwrap(detail)
                tickets += 1
                route = ROUTES.get(t.get("channel"), "email")
                if route == "skip" or not t.get("messages"):
                    continue
                if route == "email" and not t.get("email"):
                    continue
                if route == "calls" and not t.get("phone"):
                    continue
                msgs = sorted(t["messages"], key=lambda m: (m["created_at"], m["id"]))
                first, rest = msgs[0], msgs[1:]
                case = {"subject": t.get("subject") or f"Ticket {t['id']}",
                        "created_at": deskie_time(first["created_at"]),
                        "user_full_name": t.get("name") or "", "do_not_send_email": True}
                if route == "email":
                    case.update(user_email=t["email"], content_html=first["message"])
                elif route == "calls":
                    case.update(user_phone=t["phone"], content=first["message"])
                else:
                    case.update(user_custom_id=t.get("email") or t.get("phone") or str(t["id"]),
                                user_custom_channel=route, content_html=first["message"])
                if first.get("agent_id"):
                    case.update(initiator_id=STAFF)
                    if route == "email":
                        case.update(case_email_id=-1)
                created, _ = call("POST", f"{api}/cases.json", deskie, {"case": case})
                c = created.get("case", created)
                cases += 1
                for m in rest:
                    body = {"created_at": deskie_time(m["created_at"])}
                    if m.get("type") == 6:  # internal note
                        body.update(staff_id=STAFF, note_staff_id=STAFF, content=m["message"])
                        call("POST", f"{api}/cases/{c['case_id']}/note.json", deskie, {"note": body})
                        continue
                    key = "content" if route == "calls" else "content_html"
                    body[key] = m["message"]
                    if m.get("agent_id"):
                        body.update(staff_id=STAFF, do_not_send_email=True)
                    else:
                        body.update(user_id=c["user_id"])
                    call("POST", f"{api}/cases/{c['case_id']}/messages.json", deskie, {"message": body})
                status = STATUS.get(t.get("status"), "open")
                priority = PRIORITY.get(t.get("priority"), "normal")
                if status != "open" or rest:
                    call("PUT", f"{api}/cases/{c['case_id']}.json", deskie,
                         {"case": {"status": status, "priority": priority}})
            url = next_link(headers)
    secs = time.monotonic() - started
    print(f"recipe: {tickets} tickets, {cases} cases, {requests} requests, {throttled} x 429, {secs:.1f} s")


if __name__ == "__main__":
    main()
