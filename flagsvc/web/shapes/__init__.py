"""Shapes both HTTP faces use, one module per resource.

The API validates and renders with them; the UI's forms validate with the same ones, so a
rule is written once and neither face imports the other.
"""
