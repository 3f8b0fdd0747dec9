"""One module per top-level policy key, each compiling its section through the `Reader`.

`rungs.policy.compile` runs them in order; a new section is a new module here plus its line
there (and its key in `SECTIONS`).
"""

from __future__ import annotations

from rungs.policy.sections.calendars import compile_calendars
from rungs.policy.sections.channels import compile_channels
from rungs.policy.sections.compensation import compile_compensation
from rungs.policy.sections.customers import compile_customers
from rungs.policy.sections.default_customer import compile_default_customer
from rungs.policy.sections.inbound_email import compile_inbound_email
from rungs.policy.sections.integrations import compile_integrations
from rungs.policy.sections.links import compile_links
from rungs.policy.sections.matrices import compile_matrices, warn_unstaffed
from rungs.policy.sections.partners import compile_partners
from rungs.policy.sections.people import compile_people
from rungs.policy.sections.reasons import compile_reasons
from rungs.policy.sections.rules import check_rule_levels, compile_rules
from rungs.policy.sections.schedules import compile_schedules
from rungs.policy.sections.sla_policies import compile_sla_policies
from rungs.policy.sections.surveys import compile_surveys
from rungs.policy.sections.teams import compile_teams
from rungs.policy.sections.timezone import compile_timezone
from rungs.policy.sections.version import compile_version

__all__ = [
    "compile_version",
    "compile_timezone",
    "compile_calendars",
    "compile_people",
    "compile_teams",
    "compile_partners",
    "compile_customers",
    "compile_default_customer",
    "compile_sla_policies",
    "compile_reasons",
    "compile_matrices",
    "compile_rules",
    "compile_schedules",
    "compile_integrations",
    "compile_compensation",
    "compile_channels",
    "compile_links",
    "compile_inbound_email",
    "compile_surveys",
    "check_rule_levels",
    "warn_unstaffed",
]
