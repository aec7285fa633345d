//! Progressive profiling: the questions an administrator configured (model and validation),
//! the engine that picks what to ask at each login, the typed answers, and applying a user's
//! submitted answers (validate, then store) once for every way they arrive.

pub mod answer;
pub mod apply;
pub mod date;
pub mod engine;
pub mod i18n;
pub mod question;
pub mod schema;

pub use answer::{encode_header_value, header_name, AnswerValue};
pub use apply::{apply, Applied, FieldErrors, Respondent, Submission};
pub use date::{CalendarDate, DateError};
pub use engine::{answer_is_current, answers_json, DueOnPath, Engine, Picked};
pub use question::{
    LengthLimits, Pattern, PatternError, Question, QuestionType, UnknownQuestionType,
    ValidationError,
};
