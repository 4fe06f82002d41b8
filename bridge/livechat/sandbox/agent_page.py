"""The sandbox's agent page: plain HTML (no CDN) for a person playing the LiveChat agent.

The chat list refreshes itself; a chat's transcript is re-read from /_sandbox/chats/<id> every
two seconds by a few lines of inline JS, so the forms keep what is being typed. Forms post to
/agent/chats/<id>/<op> and come back to the chat (303).
"""
from __future__ import annotations

from html import escape

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;max-width:70rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left}
.muted{color:#777}.note{background:#fff6d5}.system{color:#777;font-style:italic}.agent{background:#eef5ff}
form{display:inline-block;margin:.3rem .8rem .3rem 0;padding:.4rem;border:1px solid #ddd;border-radius:4px}
input,select,button{font:inherit}#transcript{border:1px solid #ccc;padding:.5rem;max-height:28rem;overflow:auto}
.event{padding:.2rem .4rem;border-bottom:1px dotted #eee}
"""


def _page(title: str, body: str, *, refresh: int | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def chat_list(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        last = row.get("last_event") or {}
        queue = row.get("queue")
        lines.append(
            "<tr>"
            f'<td><a href="/agent/chats/{escape(row["id"])}">{escape(row["id"])}</a></td>'
            f'<td>{escape(row["organization_id"])}</td>'
            f'<td>{escape(row["customer_name"] or row["customer_id"])}</td>'
            f'<td>{"active" if row["active"] else "closed"}</td>'
            f'<td>{escape(", ".join(str(g) for g in row["group_ids"]))}</td>'
            f'<td>{escape(", ".join(row["agent_ids"])) or "<span class=muted>waiting</span>"}</td>'
            f'<td>{escape(str(queue["position"])) if queue else ""}</td>'
            f'<td>{escape(str(last.get("text") or last.get("name") or last.get("type") or ""))[:80]}</td>'
            "</tr>"
        )
    table = ('<table id="chats"><thead><tr><th>chat</th><th>organization</th><th>customer</th><th>status</th>'
             "<th>groups</th><th>agents</th><th>queue</th><th>last event</th></tr></thead><tbody>"
             + ("".join(lines) or '<tr><td colspan="8" class="muted">No chats yet.</td></tr>')
             + "</tbody></table>")
    return _page("LiveChat sandbox — chats", f"<h1>LiveChat sandbox — chats</h1>{table}", refresh=3)


def _options(values, label=str) -> str:
    return "".join(f'<option value="{escape(str(v))}">{escape(label(v))}</option>' for v in values)


def chat_view(detail: dict) -> str:
    chat_id = escape(detail["id"])
    agents = detail["organization"]["agents"]
    agent_select = f'<select name="agent_id">{_options([a["id"] for a in agents])}</select>'
    groups = detail["organization"]["groups"]
    targets = [f"group:{g}" for g in groups] + [f"agent:{a['id']}" for a in agents]

    def form(op: str, fields: str, button: str) -> str:
        return f'<form method="post" action="/agent/chats/{chat_id}/{op}">{fields}<button>{button}</button></form>'

    forms = "".join([
        form("join", agent_select, "Join"),
        form("message", agent_select + ' <input name="text" size="40" placeholder="Message" required>', "Send"),
        form("file", agent_select + ' <input name="name" placeholder="file name" required>'
             ' <input name="url" placeholder="https://…" required> <input name="content_type" value="image/png">'
             ' <input name="size" type="number" value="0" style="width:6rem">', "Send file link"),
        form("rich_message", agent_select + ' <input name="title" placeholder="Question" value="Did this help?">'
             ' <input name="buttons" placeholder="comma-separated buttons" value="Yes,No">', "Send rich message"),
        form("note", agent_select + ' <input name="text" size="30" placeholder="Internal note" required>', "Add note"),
        form("transfer", f'<select name="target">{_options(targets)}</select>'
             ' queue position <input name="queue_position" type="number" style="width:4rem">'
             ' wait <input name="wait_time" type="number" style="width:4rem"> s', "Transfer"),
        form("close", agent_select + ' <label><input type="checkbox" name="router" value="1"> as router</label>',
             "Close"),
    ])
    events = "".join(_event_html(e) for thread in detail["threads"] for e in thread["events"])
    status = "active" if detail["active"] else "closed"
    body = (f'<p><a href="/agent/">← all chats</a></p><h1>Chat {chat_id} <small class="muted" id="status">{status}'
            f'</small></h1><div id="transcript">{events}</div><h2>Act as an agent</h2>{forms}'
            f"<script>{_TRANSCRIPT_JS % {'chat_id': chat_id}}</script>")
    return _page(f"Chat {detail['id']}", body)


def _event_html(event: dict) -> str:
    kind = "note" if event.get("visibility") == "agents" else ("system" if event["type"] == "system_message" else "")
    text = event.get("text") or event.get("name") or event.get("url") or event.get("template_id") or event["type"]
    return (f'<div class="event {kind}"><span class="muted">{escape(event.get("author_id", "system"))}:</span> '
            f"{escape(str(text))}</div>")


# Re-renders the transcript with textContent only (no HTML injection from chat text).
_TRANSCRIPT_JS = """
async function refresh(){
  try{
    const r = await fetch('/_sandbox/chats/%(chat_id)s'); if(!r.ok) return; const chat = await r.json();
    const box = document.getElementById('transcript'); box.textContent = '';
    for (const t of chat.threads) for (const e of t.events) {
      const d = document.createElement('div');
      d.className = 'event ' + (e.visibility === 'agents' ? 'note' : e.type === 'system_message' ? 'system' : '');
      const who = document.createElement('span'); who.className = 'muted'; who.textContent = (e.author_id || 'system') + ': ';
      d.appendChild(who); d.appendChild(document.createTextNode(e.text || e.name || e.url || e.template_id || e.type));
      box.appendChild(d);
    }
    document.getElementById('status').textContent = chat.active ? 'active' : 'closed';
  }catch(err){}
}
setInterval(refresh, 2000);
"""


def error_page(chat_id: str, message: str) -> str:
    return _page("Sandbox error", f'<p>{escape(message)}</p><p><a href="/agent/chats/{escape(chat_id)}">back</a></p>')


def form_fields(op: str, form: dict[str, str]) -> dict:
    """Turn an agent-page form into the keyword arguments of the matching SandboxState method."""
    fields = {k: v.strip() for k, v in form.items() if v.strip()}
    if op == "transfer":
        kind, _, value = fields.pop("target", "").partition(":")
        fields["group_id" if kind == "group" else "agent_id"] = int(value) if kind == "group" else value
        for key in ("queue_position", "wait_time"):
            if key in fields:
                fields[key] = int(fields[key])
    elif op == "close":
        if fields.pop("router", None):
            fields = {"router": True}
    elif op == "file":
        fields["size"] = int(fields.get("size") or 0)
    elif op == "rich_message":
        fields["buttons"] = [b.strip() for b in fields.pop("buttons", "Yes,No").split(",") if b.strip()]
    return fields
