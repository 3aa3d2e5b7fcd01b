"""The public register (公示): members, their status and its history, and
the disclosed violations (the public part of blacklist entries). JSON, and a
plain server-rendered HTML page in Chinese and English (no script, no
external resources, every value escaped).

A member is an enrollment that was ever approved: pending, rejected and
never-approved expired submissions are not members. Status history comes
from the store's member_status rows; an enrollment without any (recorded
before history existed) shows its current status only.
"""
from __future__ import annotations

import hashlib
import html
from typing import TypedDict

from . import blacklist

NOT_MEMBERS = ("pending", "rejected")


def _history(store, record) -> list[dict]:
    rows = store.status_history(record.id) if hasattr(store, "status_history") else []
    if not rows:
        return [{"status": record.status, "at": record.updated_at.isoformat(), "reason": ""}]
    return [{"status": r.status, "at": r.at.isoformat(), "reason": r.reason} for r in rows]


def register(store) -> dict:
    members = []
    for record in store.list_enrollments():
        history = _history(store, record)
        if record.status in NOT_MEMBERS or (record.status != "active" and not any(h["status"] == "active" for h in history)):
            continue
        members.append({
            "name": record.member,
            "jurisdiction": record.jurisdiction,
            "status": record.status,
            "root_subject": record.root_subject,
            "root_certificate_sha256": hashlib.sha256(record.root_der).hexdigest(),
            "since": next((h["at"] for h in history if h["status"] == "active"), None),
            "status_history": history,
        })
    return {"members": members, "violations": [blacklist.public_view(r) for r in store.blacklist_entries()]}


class _Labels(TypedDict):
    """One language's texts of the register page."""

    title: str
    members: str
    violations: str
    name: str
    jurisdiction: str
    status: str
    root: str
    history: str
    kind: str
    value: str
    reason: str
    note: str
    effective: str
    removed: str
    none: str
    other: str
    statuses: dict[str, str]


TEXT: dict[str, _Labels] = {
    "en": {
        "title": "Public register of the bridge's members", "members": "Members", "violations": "Disclosed violations (blacklist)",
        "name": "Name", "jurisdiction": "Jurisdiction", "status": "Status", "root": "Root certificate", "history": "Status history",
        "kind": "Kind", "value": "Listed", "reason": "Reason", "note": "Note", "effective": "Effective", "removed": "Removed",
        "none": "None.", "other": "中文",
        "statuses": {"active": "active", "suspended": "suspended", "revoked": "revoked", "withdrawn": "withdrawn",
                     "expired": "expired", "pending": "pending", "rejected": "rejected", "removed": "removed"},
    },
    "zh": {
        "title": "桥CA成员公示", "members": "成员", "violations": "违规公示（黑名单）",
        "name": "名称", "jurisdiction": "辖区", "status": "状态", "root": "根证书", "history": "状态记录",
        "kind": "类型", "value": "列入对象", "reason": "原因", "note": "说明", "effective": "生效时间", "removed": "移除时间",
        "none": "无。", "other": "English",
        "statuses": {"active": "有效", "suspended": "暂停", "revoked": "已撤销", "withdrawn": "已退出",
                     "expired": "已过期", "pending": "待审核", "rejected": "已拒绝", "removed": "已移除"},
    },
}


def language(query: str | None, accept_language: str) -> str:
    """``?lang=`` first, then the first of Accept-Language's zh / en by preference (default zh)."""
    if query in TEXT:
        return query
    ranked = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in TEXT and q > 0:
            ranked.append((-q, position, primary))
    return min(ranked)[2] if ranked else "zh"


def _value_text(entry: dict) -> str:
    value = entry["value"]
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def render_html(data: dict, lang: str) -> str:
    t = TEXT[lang]
    e = html.escape
    other = "en" if lang == "zh" else "zh"
    out = [f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
           f"<title>{e(t['title'])}</title></head><body>",
           f"<h1>{e(t['title'])}</h1><p><a href=\"?lang={other}\">{e(t['other'])}</a></p>",
           f"<h2>{e(t['members'])}</h2>"]
    if data["members"]:
        out.append(f"<table><tr><th>{e(t['name'])}</th><th>{e(t['jurisdiction'])}</th><th>{e(t['status'])}</th>"
                   f"<th>{e(t['root'])}</th><th>{e(t['history'])}</th></tr>")
        for m in data["members"]:
            history = "<br>".join(f"{e(h['at'])} {e(t['statuses'].get(h['status'], h['status']))}"
                                  + (f": {e(h['reason'])}" if h["reason"] else "") for h in m["status_history"])
            out.append(f"<tr><td>{e(m['name'])}</td><td>{e(m['jurisdiction'])}</td>"
                       f"<td>{e(t['statuses'].get(m['status'], m['status']))}</td>"
                       f"<td>{e(m['root_subject'])}<br><small>SHA-256 {e(m['root_certificate_sha256'])}</small></td>"
                       f"<td>{history}</td></tr>")
        out.append("</table>")
    else:
        out.append(f"<p>{e(t['none'])}</p>")
    out.append(f"<h2>{e(t['violations'])}</h2>")
    if data["violations"]:
        out.append(f"<table><tr><th>{e(t['kind'])}</th><th>{e(t['value'])}</th><th>{e(t['reason'])}</th><th>{e(t['note'])}</th>"
                   f"<th>{e(t['effective'])}</th><th>{e(t['status'])}</th></tr>")
        for v in data["violations"]:
            status = t["statuses"].get(v["status"], v["status"]) + (f" {v['removed_at']}" if v["removed_at"] else "")
            out.append(f"<tr><td>{e(v['kind'])}</td><td>{e(_value_text(v))}</td><td>{e(v['reason'])}</td>"
                       f"<td>{e(v['public_note'])}</td><td>{e(v['effective_at'])}</td><td>{e(status)}</td></tr>")
        out.append("</table>")
    else:
        out.append(f"<p>{e(t['none'])}</p>")
    out.append("</body></html>\n")
    return "\n".join(out)
