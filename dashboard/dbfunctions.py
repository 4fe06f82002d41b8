"""Portable SQL for the overview's aggregates that run without per-row Python on SQLite.

Django's TruncDate and datetime subtraction call Python functions for every row on SQLite
(django_datetime_cast_date, django_timestamp_diff): ~1 s per 100k rows each. These use the
databases' own functions instead. Datetimes are stored in UTC (USE_TZ), and the overview counts
UTC days, so no time zone conversion is needed.
"""
from django.db.models import Aggregate, CharField, FloatField, Func


class UtcDay(Func):
    """The UTC calendar day of a datetime as 'YYYY-MM-DD'."""

    arity = 1
    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite keeps datetimes as ISO 8601 text: the day is the first ten characters.
        return self.as_sql(compiler, connection, template="substr(%(expressions)s, 1, 10)", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD')", **extra
        )


class SecondsBetween(Func):
    """`end - start` in seconds (float), for sorting and medians."""

    arity = 2
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="CAST(EXTRACT(EPOCH FROM (%(expressions)s)) AS double precision)",
            arg_joiner=" - ", **extra
        )


class Median(Aggregate):
    """PostgreSQL's percentile_cont(0.5): the median, computed by the database."""

    function = "percentile_cont"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()
    allow_distinct = False

    def as_sql(self, compiler, connection, **extra):
        if connection.vendor != "postgresql":
            raise NotImplementedError("Median is PostgreSQL only; see selectors._median_first_reply")
        return super().as_sql(compiler, connection, **extra)
