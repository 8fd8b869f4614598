"""Run the web server and a qcluster together (what `make run` starts); Ctrl-C stops both.
Next to loa_demo, whose admin password it prints."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from webhooks.management.commands.loa_demo import PASSWORD_FILE


class Command(BaseCommand):
    help = "Start the web server and a django-q2 worker cluster; print the URL and login."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args, **opts):
        url = f"http://{opts['host']}:{opts['port']}/admin/"
        password = (
            PASSWORD_FILE.read_text().strip()
            if PASSWORD_FILE.exists()
            else "(see LOA_ADMIN_PASSWORD)"
        )
        manage = [sys.executable, "manage.py"]
        # The children read PORT for the default PUBLIC_BASE_URL (the webhook URLs the admin
        # shows): `make run PORT=8110` passes --port, not the environment variable.
        env = {**os.environ, "PORT": str(opts["port"])}
        procs = [
            subprocess.Popen(
                [*manage, "runserver", "--noreload", f"{opts['host']}:{opts['port']}"], env=env
            ),
            subprocess.Popen([*manage, "qcluster"], env=env),
        ]
        time.sleep(1.5)
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Loa is running at {url}\n  Login: admin / {password}  (also marketer, contacts)\n"
                "  Ctrl-C stops the web server and the worker.\n"
            )
        )

        def stop(*_):
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()

        signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
        try:
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
