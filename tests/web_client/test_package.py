"""The browser demo ships with the installed package and its page only links files that exist."""
import re

from fada_stream.serve.app import web_client_dir


def test_web_client_is_found_with_everything_the_page_links():
    root = web_client_dir()
    html = (root / "index.html").read_text()
    linked = re.findall(r'(?:src|href)="static/([^"]+)"', html)
    assert sorted(linked) == ["app.js", "style.css"]
    assert all((root / name).is_file() for name in linked)
