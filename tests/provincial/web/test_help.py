"""The help behind every page's 帮助 button: each topic a template names has a guide page with that section,
each picture a guide shows exists, and the guide renders as a page (headings as anchors, no raw HTML)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provincial_node.web.shell import GUIDE_DIR, GUIDES
from provincial_node.web.templating import HELP

ROOT = Path(__file__).resolve().parents[3]


def _headings(guide: str) -> set[str]:
    text = (GUIDE_DIR / f"{guide}.md").read_text(encoding="utf-8")
    return {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_every_help_topic_of_the_templates_has_its_section():
    used = set()
    for path in (ROOT / "provincial_node").rglob("*.html"):
        used |= set(re.findall(r'help_topic = "([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert used <= set(HELP), f"templates name help topics without a guide section: {used - set(HELP)}"
    for topic, (guide, section) in HELP.items():
        assert guide in GUIDES, topic
        assert section in _headings(guide), f"{topic}: no heading '{section}' in docs/guide/{guide}.md"


def test_every_picture_of_the_guide_exists():
    for guide in GUIDES:
        text = (GUIDE_DIR / f"{guide}.md").read_text(encoding="utf-8")
        for name in re.findall(r"\]\(\.\./screenshots/([^)]+)\)", text):
            assert (ROOT / "docs" / "screenshots" / name).is_file(), f"docs/guide/{guide}.md shows missing {name}"


@pytest.mark.parametrize("guide", list(GUIDES))
def test_each_guide_page_renders_with_anchors_and_its_pictures(site, guide):
    c = site.client("school_info")
    page = c.get(f"/help/{guide}")
    assert page.status_code == 200
    for heading in _headings(guide):
        assert f'id="{heading}"' in page.text
    for src in re.findall(r'<img src="([^"]+)"', page.text):
        picture = c.get(src)
        picture.close()  # a file answer holds the file open until closed
        assert picture.status_code == 200 and picture.mimetype == "image/png", src
