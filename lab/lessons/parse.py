"""Reading a lesson file's structure (what lab.lessons.validate then checks). The format:

    ---                                  front matter, YAML: title, mechanism, minutes, summary, presets
    title: Catastrophic forgetting
    ...
    ---
    Optional introduction (Markdown).

    ## 1. The first step's title          a step: "## <number>. <title>", numbered 1, 2, … in order
    Markdown text of the step.

    ```step                               optional: the step's panel, preset, run, predict, try, rerun (YAML)
    panel: loss_accuracy
    preset: two_languages
    ```

    ### Observation                       optional: shown once the panel has run (template fields)
    ### Try this                          optional: a variation to try

Headings inside fenced code are text. Returns plain data and problems (text, step number or None).
"""
from __future__ import annotations

import re

import yaml

STEP_HEADING = re.compile(r"^##\s+(\d+)\.\s+(\S.*?)\s*$")
ANY_H2 = re.compile(r"^##\s+\S")
SECTION = re.compile(r"^###\s+(observation|try this)\s*:?\s*$", re.IGNORECASE)
FENCE = re.compile(r"^(```|~~~)")


def load_yaml(text: str, what: str) -> tuple[object, str | None]:
    try:
        return yaml.safe_load(text), None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1} of the {what})" if mark is not None else ""
        reason = getattr(err, "problem", None) or str(err).splitlines()[0]
        return None, f"the {what} is not valid YAML{where}: {reason}"


def front_matter(text: str) -> tuple[dict, str, list[str]]:
    """(front matter as a dict, the rest of the file, problems)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text, ["the file must begin with a front matter: a line “---”, YAML (title, mechanism, minutes, "
                          "presets), and a closing “---”"]
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        return {}, text, ["the front matter has no closing line “---”"]
    data, problem = load_yaml("\n".join(lines[1:end]), "front matter")
    if problem:
        return {}, "\n".join(lines[end + 1:]), [problem]
    if not isinstance(data, dict):
        return {}, "\n".join(lines[end + 1:]), ["the front matter must be a mapping of keys (title: …, minutes: …)"]
    return data, "\n".join(lines[end + 1:]), []


def _outside_fences(lines: list[str]):
    """(index, line, inside a fence) for every line."""
    fenced = False
    for i, line in enumerate(lines):
        if FENCE.match(line.strip()):
            yield i, line, True
            fenced = not fenced
            continue
        yield i, line, fenced


def steps(body: str) -> tuple[str, list[dict], list[tuple[int | None, str]]]:
    """(the introduction, raw steps {number, title, lines}, problems)."""
    lines = body.splitlines()
    intro, found, problems, current = [], [], [], None
    for _, line, fenced in _outside_fences(lines):
        match = None if fenced else STEP_HEADING.match(line)
        if match:
            current = {"number": int(match.group(1)), "title": match.group(2), "lines": []}
            found.append(current)
            continue
        if not fenced and ANY_H2.match(line):
            problems.append((len(found) or None, f"the heading “{line.strip()[:60]}” is not a numbered step: write "
                                                 "“## 3. Title”"))
        (intro if current is None else current["lines"]).append(line)
    for position, step in enumerate(found, start=1):
        if step["number"] != position:
            problems.append((step["number"], f"steps are numbered 1, 2, 3, … in order: this is step {position} of the "
                                             f"file but is numbered {step['number']}"))
    if not found:
        problems.append((None, "the lesson has no steps: write each as “## 1. Title”"))
    return "\n".join(intro).strip(), found, problems


def step_parts(lines: list[str]) -> tuple[str | None, str, str, str, list[str]]:
    """(the ```step block's YAML or None, body, observation, try text, problems) of one step."""
    block, body, sections, problems = None, [], {"observation": [], "try this": []}, []
    target, mode, block_lines = body, "text", []          # mode: text, fence (other code), block (```step)
    for line in lines:
        stripped = line.strip()
        if mode == "block":
            if FENCE.match(stripped):
                mode = "text"
                if block is not None:
                    problems.append("a step has at most one ```step block")
                else:
                    block = "\n".join(block_lines)
            else:
                block_lines.append(line)
            continue
        if mode == "text" and stripped in ("```step", "~~~step"):
            mode, block_lines = "block", []
            continue
        if FENCE.match(stripped):
            mode = "fence" if mode == "text" else "text"
        section = SECTION.match(stripped) if mode == "text" else None
        if section:
            target = sections[section.group(1).lower()]
            continue
        target.append(line)
    if mode == "block":
        problems.append("the ```step block is not closed")
    return (block, "\n".join(body).strip(), "\n".join(sections["observation"]).strip(),
            "\n".join(sections["try this"]).strip(), problems)
