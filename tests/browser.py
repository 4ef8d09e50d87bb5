"""Debian's chromium driven by Playwright (which never downloads a browser here), for tests that need
Web Crypto in a real page."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CRYPTO_MODULE = "/static/sotto-crypto-0.1.js"


@contextmanager
def chromium_page(url: str) -> Iterator[Any]:
    """A page at `url` (use 127.0.0.1: a secure context, so crypto.subtle exists); console errors fail the test."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is required; scripts/test installs it")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=ARGS)
        try:
            page = browser.new_context().new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            yield page
            assert errors == [], errors
        finally:
            browser.close()


def in_crypto_module(page: Any, body: str, arg: Any = None) -> Any:
    """Run `body` (an async function body with `sc`, the crypto module, and `arg` in scope) in the page."""
    script = f"async (arg) => {{ const sc = await import('{CRYPTO_MODULE}'); {body} }}"
    return page.evaluate(script, arg)
