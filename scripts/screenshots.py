"""`make screenshots`: the console's pictures in the README, taken from real
servers by Debian's chromium (headless, driven by Playwright; no downloaded
browser, the flags of tests/api/test_docs_browser.py).

1. The demo federation of certs/ (4 members; `bridgeca demo --no-serve` in a
   temporary home), Macao suspended (`bridgeca issuer suspend`) so that the
   graph shows a suspended member beside active ones;
2. the generated federation of 60 members (tests/fedgen.py);
3. each served by `bridgeca serve` on 127.0.0.1, an admin token from
   `bridgeca token create`, signed in through /admin/login;
4. docs/screenshots/overview-4.png and overview-60.png (the overview page),
   verify.png (the verification page after a Macao signer's chain was pasted:
   it fails at the suspended member's cross-certificate), each made small by
   pngquant (a 256-colour palette) where it is installed (the Makefile's
   target installs it, and a CJK font for the language switch's 中文).

Temporary homes are removed afterwards; the PNGs are overwritten.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fedgen, when run as a script
    sys.path.insert(0, str(REPO))
OUT = REPO / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--font-render-hinting=none"]
PASSPHRASE = "bridgeca screenshots: not secret"
# The overview's graph is at most 80% of the window's height (static/console.css): 60 members need a taller one.
VIEWPORTS = {"overview-4.png": {"width": 1400, "height": 900}, "overview-60.png": {"width": 1400, "height": 1100}}
WAIT_MS = 60_000


def bridgeca() -> list[str]:
    exe = Path(sys.executable).with_name("bridgeca")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "api.cli"]


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGECA_")}
    env["BRIDGECA_KEY_PASSPHRASE"] = PASSPHRASE
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run(*args: str, extra: dict[str, str] | None = None) -> str:
    done = subprocess.run(list(args), env=environment(extra), cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"screenshots: {' '.join(args[:4])} failed: {done.stderr.strip()[-600:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`bridgeca serve` on a free port of 127.0.0.1 until closed."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(home.parent / f"{home.name}-serve.log", "wb")  # closed in close()
        self.process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--port", str(self.port)],
                                        env=environment(), cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                sys.exit(f"screenshots: bridgeca serve exited: {Path(self.log.name).read_text()[-600:]}")
            try:
                with urllib.request.urlopen(self.base + "/v1/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                sys.exit("screenshots: bridgeca serve did not answer within 60 s")
            time.sleep(0.2)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def admin_token(home: Path) -> str:
    return json.loads(run(*bridgeca(), "token", "create", "--home", str(home), "--role", "admin", "--json"))["token"]


def demo_home(base: Path) -> tuple[Path, str]:
    """The demo federation, Macao suspended; returns the home and the enrollment id of Macao."""
    home = base / "demo4"
    run(*bridgeca(), "demo", "--home", str(home), "--no-serve")
    issuers = json.loads(run(*bridgeca(), "issuer", "list", "--home", str(home), "--json"))
    macao = next(i for i in issuers if i["jurisdiction"] == "MO" and i["status"] == "active")
    run(*bridgeca(), "issuer", "suspend", macao["id"], "--home", str(home), "--reason", "audit finding under review")
    return home, macao["id"]


def generated_home(base: Path) -> Path:
    from tests.fedgen import init_env

    home = base / "gen60"
    run(sys.executable, "-m", "tests.fedgen", str(home), "--members", "60", extra=init_env())
    return home


def sign_in(page, base: str, token: str) -> None:
    page.goto(base + "/admin/login?lang=en", wait_until="load")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def shoot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    if shutil.which("pngquant"):
        # A palette of at most 256 colours: the 60-member graph's antialiased curves make a 380 kB PNG, 130 kB so.
        subprocess.run(["pngquant", "--quality", "70-95", "--speed", "1", "--force", "--strip", "--output", str(path),
                        str(path)], check=True)
    size = path.stat().st_size
    print(f"wrote {path.relative_to(REPO)} ({size // 1024} kB)" + (" over 300 kB: install pngquant" if size > 300_000 else ""))


def main() -> int:
    if not CHROMIUM.exists():
        sys.exit(f"screenshots: Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    base_dir = Path(tempfile.mkdtemp(prefix="bridgeca-screenshots-"))
    servers: list[Server] = []
    try:
        home4, _macao = demo_home(base_dir)
        home60 = generated_home(base_dir)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
            try:
                for home, name in ((home4, "overview-4.png"), (home60, "overview-60.png")):
                    server = Server(home)
                    servers.append(server)
                    page = browser.new_page(viewport=VIEWPORTS[name])
                    page.set_default_timeout(WAIT_MS)
                    sign_in(page, server.base, admin_token(home))
                    page.goto(server.base + "/admin?lang=en", wait_until="load")
                    page.wait_for_selector("#graph svg")
                    shoot(page, OUT / name)
                    if home is home4:
                        certs = REPO / "certs" / "mo"
                        chain = (certs / "signer.pem").read_text() + (certs / "issuing-ca.pem").read_text()
                        page.goto(server.base + "/verify?lang=en", wait_until="load")
                        page.fill("textarea[name=input]", chain)
                        page.click("form[action='/verify'] button[type=submit]")
                        page.wait_for_load_state("load")
                        shoot(page, OUT / "verify.png")
                    page.close()
            finally:
                browser.close()
    finally:
        for server in servers:
            server.close()
        shutil.rmtree(base_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
