//! Policy (DESIGN §11): who may pass (`[access]`), which paths are public or never blocked by
//! a question (`[[routes]]`), and when a question applies (`when`). Compiled at load by the
//! configuration; pure at request time, like `pipeline::decide`, which takes its results.
//!
//! ```text
//!  expr.rs     CEL expressions: compiled with their references checked, evaluated (false
//!              on any error) over claims, groups, answers and the request
//!  access.rs   the simple keys + `allow` as one rule; groups read from a dotted claim path
//!  path.rs     the normalized path the upstream gets; its strict and lenient readings
//!  routes.rs   first-match route table over method and path
//!  verdict.rs  what a session's facts decide, cached per session and profile revision
//! ```

mod access;
mod expr;
mod path;
mod routes;
mod verdict;

pub use access::{groups_at, AccessRule};
pub use expr::{ClaimUse, Expr, Facts, RequestFacts, Scope};
pub use path::{normalize, strict, under_segment};
pub use routes::{PathPattern, QuestionsMode, Route, RouteMatch, RouteTable, MAX_ROUTES};
pub use verdict::{Policy, SessionVerdicts, Verdict};
