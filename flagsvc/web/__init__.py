"""What the two HTTP faces share: the JSON API (`flagsvc.api`) and the HTML UI (`flagsvc.ui`).

Request context (database, app state, request id), rate limiting, error rendering,
body limits, cursors, CSV cells and the field rules both validate input with live here,
so neither face imports the other.
"""
