"""The application's commands and queries, by concern; composed into `domain.application.Hookline`."""
