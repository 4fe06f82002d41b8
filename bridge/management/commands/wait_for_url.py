import time

import requests
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Wait until a URL answers (used by `make run` to start the console after the sandbox)."

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, **opts):
        deadline = time.monotonic() + opts["timeout"]
        while time.monotonic() < deadline:
            try:
                requests.get(opts["url"], timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise CommandError(f"{opts['url']} did not answer within {opts['timeout']:.0f} s")
