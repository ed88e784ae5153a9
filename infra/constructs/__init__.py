"""One construct per capability of the source stack."""
