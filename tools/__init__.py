"""Instructor tools of the course: they need a clone of the repository and write notebooks.

They are not part of the student package ``course_utils`` (which ships to Colab and every pip install).
Run them from the repository root, e.g. ``python -m tools.exercises`` or ``make exercises``.
"""
