"""Readers for the project's files: Rasa 3.x formats (domain, NLU, rules, stories, test stories) and faq.yml."""
