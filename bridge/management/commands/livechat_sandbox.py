"""`python manage.py livechat_sandbox --port 8090`: the LiveChat sandbox with a demo organization."""
from django.core.management.base import BaseCommand

from bridge.livechat.sandbox import cli


class Command(BaseCommand):
    help = "Serve the LiveChat sandbox (LiveChat APIs, webhooks, agent page) until Ctrl-C."
    # The sandbox stands in for LiveChat and uses no models or database: it must start even
    # when the console itself is misconfigured.
    requires_system_checks = []

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()  # the first line is read by scripts and tests through a pipe

        cli.run(options, write)
