"""The review page: a quarantine review UI for operators, served on admin_api.review_port.

The page is static HTML, CSS and JavaScript from ``static/``, so it needs nothing from
the internet. Its script signs in with an operator's bearer token, keeps the token in
the tab's ``sessionStorage`` and calls the admin API routes that the same site serves
(see ``admin_api.app.create_review_app``), so every action is an ordinary API request.
"""

from __future__ import annotations

from admin_api.review.site import ASSETS, REVIEW_PAGE_PATH, add_review_page

__all__ = ["ASSETS", "REVIEW_PAGE_PATH", "add_review_page"]
