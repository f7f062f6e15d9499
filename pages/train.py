"""Train page: arrives with its own issue; until then it says so."""

from ui.common import coming_soon

coming_soon("nav.train")
