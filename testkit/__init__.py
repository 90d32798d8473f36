"""Offline test kit: tiny models, sample flashcards, an isolated local Flower SuperLink."""
