"""Prompt templates a–e, the per-run article token table, and prompt assembly from token ids."""
