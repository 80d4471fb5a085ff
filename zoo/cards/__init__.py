"""Model cards: plain-data contexts rendered through logic-free templates in templates/."""
