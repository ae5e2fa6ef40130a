"""The files mailpin owns: pin store, held-message queue, audit log, settings, atomic writes."""
