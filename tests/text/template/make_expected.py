#!/usr/bin/python3
"""Writes the expected renderings of the chat template tests with real Jinja2.

Run with Debian's python3 and python3-jinja2 (apt-get install python3-jinja2) from the repository root:
    /usr/bin/python3 tests/text/template/make_expected.py
It renders every template in ../shared/golden/templates/ with every conversation in
tests/data/chat/conversations.json, with and without a generation prompt, into
tests/data/chat/expected/<template>__<conversation>__gp<0|1>.txt (or .error.txt when Jinja2 raises),
and every snippet of tests/data/chat/snippets.txt into tests/data/chat/snippets_expected.json.

The environment is Hugging Face's (transformers' _compile_jinja_template): an ImmutableSandboxedEnvironment
with trim_blocks, lstrip_blocks and loop controls, tojson as json.dumps(ensure_ascii=False), and the
raise_exception and strftime_now globals. Two additions, which the engine has too:
  * tojson first turns an iterator into a list: `tools | map(attribute='function') | tojson`, which
    llama.cpp's DeepSeek-R1 template uses, otherwise fails in Python ("generator is not JSON serializable")
    while every llama.cpp-style engine renders the list.
  * from_json (json.loads), which DeepSeek-V3.2's template applies to string tool arguments.
"""
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TEMPLATES = os.path.join(ROOT, "..", "shared", "golden", "templates")
DATA = os.path.join(ROOT, "tests", "data", "chat")


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    if not isinstance(x, (dict, list, tuple, str, int, float, bool, type(None))) and hasattr(x, "__iter__"):
        x = list(x)
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols, GenerationBlock])
    env.filters["tojson"] = tojson
    env.filters["from_json"] = json.loads
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: "strftime_now is not deterministic"
    return env


class GenerationBlock(jinja2.ext.Extension):
    """HF's {% generation %} block, which renders its body unchanged (HF also records where)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def render_conversations(env):
    spec = json.load(open(os.path.join(DATA, "conversations.json"), encoding="utf-8"))
    out_dir = os.path.join(DATA, "expected")
    os.makedirs(out_dir, exist_ok=True)
    for old in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, old))
    count = 0
    for name in sorted(os.listdir(TEMPLATES)):
        if not name.endswith(".jinja"):
            continue
        source = open(os.path.join(TEMPLATES, name), encoding="utf-8").read()
        template = env.from_string(source)
        for conv in spec["conversations"]:
            extra = dict(conv.get("extra", {}))
            tools = extra.pop("tools", None)
            for gp in (False, True):
                stem = f"{name[:-len('.jinja')]}__{conv['name']}__gp{int(gp)}"
                try:
                    text = template.render(messages=conv["messages"], tools=tools, documents=None,
                                           add_generation_prompt=gp, bos_token=spec["bos_token"],
                                           eos_token=spec["eos_token"], **extra)
                    write(os.path.join(out_dir, stem + ".txt"), text)
                except Exception as e:  # the engine must fail too
                    write(os.path.join(out_dir, stem + ".error.txt"), f"{type(e).__name__}: {e}\n")
                count += 1
    print(f"{count} renderings into {out_dir}")


def read_snippets():
    snippets = []
    text = open(os.path.join(DATA, "snippets.txt"), encoding="utf-8", newline="").read()
    for chunk in text.split("### ")[1:]:
        header, _, body = chunk.partition("\n")
        if body.endswith("\n"):
            body = body[:-1]
        snippets.append((header.strip(), body))
    return snippets


def render_snippets(env):
    context = json.load(open(os.path.join(DATA, "snippets_context.json"), encoding="utf-8"))
    results = {}
    for name, body in read_snippets():
        try:
            results[name] = {"output": env.from_string(body).render(**context)}
        except Exception as e:
            results[name] = {"error": f"{type(e).__name__}: {e}"}
    with open(os.path.join(DATA, "snippets_expected.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(results)} snippets")


def main():
    env = make_env()
    render_conversations(env)
    render_snippets(env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
