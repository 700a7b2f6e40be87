"""
### Coupang sign-in (a person completes a seller's sign-on from the Airflow UI)

When a portal asks for an SMS code (인증번호) for a browser profile it does not know, the account's
collection stops as `auth_challenge`. Trigger this DAG with `{"channel": ..., "account": ...}`, or
use the **Sign in** action on Browse > Coupang collections (the `auth_challenge` alert links to it):

1. `sign_in` opens the account's browser profile (in the portal's pool), submits the password and,
   at the SMS step, keeps the browser open while it waits for the code
   (`COUPANG_SIGN_IN_CODE_WAIT_MINUTES`, default 5);
2. `ask_code_1` appears under Browse > **Required Actions**, saying which seller, which portal,
   where the code was sent and how long it is valid; enter the code the seller reads out;
3. a refused code is asked again (`ask_code_2`, ... up to `COUPANG_SIGN_IN_CODE_ATTEMPTS`, default 3);
4. once signed on, the profile keeps the portal's device trust: the account's next collection
   signs on without the SMS step. The status page shows who completed the sign-in and when.

No answer in time: `sign_in` fails with `[auth_challenge] no SMS code was given within N minute(s)`
and nothing else changes. The code is masked in every log and is kept only in the Required
Action's own answer. The terminal command `python -m coupang_sales.sign_in CHANNEL ACCOUNT` does
the same on a machine with a person at it. See docs/operating.md, "Sign-ons and browser profiles".

**Owner:** data-engineering (the alerts' e-mail and Slack channel). **Code:**
`plugins/coupang_sales/airflow_glue/sign_in_dag.py` (the DAGs and their Required Actions),
`plugins/coupang_sales/portal/assisted.py` (the sign-on with the SMS code, shared with the terminal
command). **Consumers:** the collections of the account (`coupang_rocket_sales`, `coupang_jet_sales`),
which sign on without the SMS step once the portal trusts the profile; `sales.sign_ins` (the status
page's "signed in by").
"""

from coupang_sales.airflow_glue.sign_in_dag import build_sign_in_dag
from coupang_sales.jet.channel import JET
from coupang_sales.rocket.channel import ROCKET

rocket_sign_in = build_sign_in_dag(ROCKET, doc_md=__doc__)
jet_sign_in = build_sign_in_dag(JET, doc_md=__doc__)
