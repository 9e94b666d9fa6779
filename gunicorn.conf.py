"""``gunicorn -c gunicorn.conf.py flagsvc.wsgi:app``: the settings live in flagsvc/serving.py.

Importing ``flagsvc.serving`` imports nothing heavy (no Flask, SQLAlchemy, psycopg or
redis), so gevent workers still patch the standard library before the app loads.
"""

from flagsvc.serving import settings

globals().update(settings())
