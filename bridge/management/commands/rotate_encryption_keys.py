from django.core.management.base import BaseCommand

from bridge.services.secrets import reencrypt_all_secrets


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the first FIELD_ENCRYPTION_KEYS key. Put the new key first, "
        "keep the old ones after it, run this, then drop the old keys."
    )

    def handle(self, *args, **opts):
        counts = reencrypt_all_secrets()
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} rows re-encrypted")
