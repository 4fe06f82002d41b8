"""Key rotation for secrets at rest."""
from django.apps import apps
from django.db import transaction

from bridge.crypto import EncryptedTextField


def encrypted_fields_by_model():
    """{model: [field names]} for every model holding an EncryptedTextField."""
    found = {}
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found[model] = names
    return found


def reencrypt_all_secrets(batch_size: int = 500) -> dict[str, int]:
    """Reads each secret (any key decrypts) and writes it back (the first key encrypts)."""
    counts = {}
    for model, names in encrypted_fields_by_model().items():
        count = 0
        with transaction.atomic():
            for obj in model.objects.only("pk", *names).iterator(chunk_size=batch_size):
                obj.save(update_fields=names)
                count += 1
        counts[model._meta.label] = count
    return counts
