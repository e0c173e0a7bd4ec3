//! Turning checked flow files into a [`Bot`]: names resolved, templates and conditions compiled,
//! messages checked against WhatsApp's limits, and every cross-file problem reported at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, Position, Severity, did_you_mean};
use crate::duration::Duration;
use crate::flow::bot::{
    Ask, Bot, Branch, FaqAnswer, FaqCollection, FaqEntry, Flow, FlowIdx, MessageTemplate,
    OptOutWords, Remind, RemindAt, Scheduled, Step, Target,
};
use crate::flow::loader::{Document, SourceFile, read_document, yaml_files};
use crate::flow::model::{
    AskKind, EventKind, FaqFile, FlowFile, HandoffSpec, OneOrMany, RetrySpec, StepSpec, TriggerSpec,
};
use crate::flow::normalize::normalize;
use crate::flow::router::{Matcher, Router, TriggerDef};
use crate::flow::schedule::CronSchedule;
use crate::flow::template::{Template, ValueTemplate};
use crate::message::{MessageSpec, Reply, limits};
use crate::script::{CompileError, Expr, Program, ScriptEngine, ScriptOrigin};
use crate::source::YamlPath;
use crate::store::Audience;

/// Where the bot's files are and the settings that shape it (from `chatflow.yaml`).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Directory of flow and FAQ files.
    pub flows_dir: PathBuf,
    /// Directory of Rhai scripts.
    pub scripts_dir: PathBuf,
    /// The flow started when nothing matches; `None` means `fallback` if there is one.
    pub fallback_flow: Option<String>,
    /// The flow started when a step fails (a template or script error).
    pub error_flow: Option<String>,
    /// Where settings were written (config file and position), to report problems there.
    pub places: HashMap<String, (PathBuf, Position)>,
    /// An ask left unanswered this long counts as abandoned.
    pub conversation_timeout: Duration,
    /// Configured channel ids (the simulator included), for `channels:` and audiences.
    pub channels: Vec<String>,
    /// Opt-out and opt-in words and their confirmations.
    pub opt_out: crate::config::OptOut,
    /// Script limits, the hosts scripts may call, and where they import from.
    pub script: crate::script::ScriptSettings,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            flows_dir: PathBuf::from("flows"),
            scripts_dir: PathBuf::from("scripts"),
            fallback_flow: None,
            error_flow: None,
            places: HashMap::new(),
            conversation_timeout: Duration::from_secs(24 * 3600),
            channels: vec!["simulator".to_owned()],
            opt_out: crate::config::OptOut::default(),
            script: crate::script::ScriptSettings {
                scripts_dir: PathBuf::from("scripts"),
                ..crate::script::ScriptSettings::default()
            },
        }
    }
}

/// How well a question may match another FAQ entry before `validate` warns.
const COLLISION_SCORE: f64 = 0.9;

/// Re-prompts allowed when `max_retries` is not given.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// A bot that loaded, with the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled bot.
    pub bot: Bot,
    /// Problems that did not stop the load.
    pub warnings: Diagnostics,
}

/// Loads every flow and FAQ file of `options.flows_dir`.
///
/// # Errors
/// Every problem found, errors and warnings, when at least one is an error.
pub fn load(options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let files = yaml_files(&options.flows_dir).unwrap_or_else(|error| {
        diagnostics.push(Diagnostic::error(
            &options.flows_dir,
            Position::new(1, 1),
            format!("cannot read the flows directory: {error}; create it or set flows_dir in chatflow.yaml"),
        ));
        Vec::new()
    });
    let documents: Vec<_> = files
        .iter()
        .filter_map(|path| read_document(path, &mut diagnostics))
        .collect();
    finish(compile(documents, options, &mut diagnostics), diagnostics)
}

/// Compiles documents already read (used by `load` and by tests with in-memory files).
pub fn compile_documents(
    documents: Vec<(SourceFile, Document)>,
    options: &LoadOptions,
) -> Result<Loaded, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    finish(compile(documents, options, &mut diagnostics), diagnostics)
}

fn finish(bot: Option<Bot>, mut diagnostics: Diagnostics) -> Result<Loaded, Diagnostics> {
    diagnostics.sort();
    match bot {
        Some(bot) if !diagnostics.has_errors() => Ok(Loaded {
            bot,
            warnings: diagnostics,
        }),
        _ => Err(diagnostics),
    }
}

fn compile(
    documents: Vec<(SourceFile, Document)>,
    options: &LoadOptions,
    diagnostics: &mut Diagnostics,
) -> Option<Bot> {
    let mut flows: Vec<(SourceFile, FlowFile)> = Vec::new();
    let mut faqs: Vec<(SourceFile, FaqFile)> = Vec::new();
    for (file, document) in documents {
        match document {
            Document::Flow(flow) => flows.push((file, *flow)),
            Document::Faq(faq) => faqs.push((file, faq)),
        }
    }
    flows.sort_by(|a, b| a.1.flow.cmp(&b.1.flow));
    let mut compiler = Compiler::new(&flows, options, diagnostics);
    let compiled: Vec<Flow> = flows
        .iter()
        .enumerate()
        .map(|(idx, (file, flow))| compiler.flow(idx, file, flow))
        .collect();
    if !compiler.diagnostics.has_errors() {
        // A misspelled target would make every step after it look unreachable.
        compiler.warn_unreachable(&flows, &compiled);
    }
    let triggers = compiler.triggers(&flows, !faqs.is_empty());
    let faq_files = faqs;
    let faqs: Vec<FaqCollection> = faq_files
        .iter()
        .map(|(file, faq)| compiler.faq(file, faq))
        .collect();
    for ((file, _), collection) in faq_files.iter().zip(&faqs) {
        compiler.warn_faq_collisions(file, collection);
    }
    let fallback_flow = match &options.fallback_flow {
        Some(name) => compiler.setting_flow("fallback_flow", Some(name)),
        None => compiler.flow_by_id.get("fallback").copied(),
    };
    let error_flow = compiler.setting_flow("error_flow", options.error_flow.as_deref());
    let Compiler {
        engine,
        flow_by_id,
        diagnostics,
        schedules,
        ..
    } = compiler;
    let router = match Router::build(triggers) {
        Ok(router) => router,
        Err(error) => {
            diagnostics.push(Diagnostic::error(
                &options.flows_dir,
                Position::new(1, 1),
                format!("cannot build the trigger index: {error}"),
            ));
            return None;
        }
    };
    let uses_http = compiled
        .iter()
        .flat_map(|flow| &flow.steps)
        .flat_map(|step| &step.scripts)
        .any(|program| program.calls_any(&["http_get", "http_post"]));
    Some(Bot {
        uses_http,
        schedules,
        faq_index: crate::faq::FaqIndex::build(&faqs),
        flows: compiled,
        flow_by_id,
        router,
        faqs,
        fallback_flow,
        error_flow,
        conversation_timeout: options.conversation_timeout,
        opt_out: OptOutWords::new(&options.opt_out),
        engine,
    })
}

/// State shared while compiling one load.
struct Compiler<'a> {
    engine: ScriptEngine,
    flow_by_id: HashMap<String, FlowIdx>,
    /// Step names and start step per flow, for resolving targets before steps are compiled.
    step_names: Vec<(Vec<String>, usize)>,
    options: &'a LoadOptions,
    diagnostics: &'a mut Diagnostics,
    /// `schedule:` triggers found so far.
    schedules: Vec<Scheduled>,
}

impl<'a> Compiler<'a> {
    fn new(
        flows: &[(SourceFile, FlowFile)],
        options: &'a LoadOptions,
        diagnostics: &'a mut Diagnostics,
    ) -> Self {
        let mut flow_by_id = HashMap::new();
        let mut first_file: HashMap<&str, &Path> = HashMap::new();
        for (idx, (file, flow)) in flows.iter().enumerate() {
            if let Some(previous) = first_file.get(flow.flow.as_str()) {
                diagnostics.push(file.value_error(
                    &YamlPath::root().key("flow"),
                    format!(
                        "flow id \"{}\" is already used by {}; flow ids must be unique",
                        flow.flow,
                        previous.display()
                    ),
                ));
                continue;
            }
            first_file.insert(&flow.flow, &file.path);
            flow_by_id.insert(flow.flow.clone(), idx);
        }
        let step_names = flows
            .iter()
            .map(|(_, flow)| {
                let start = flow
                    .start
                    .as_ref()
                    .and_then(|s| flow.steps.get_index_of(s))
                    .unwrap_or(0);
                (flow.steps.keys().cloned().collect(), start)
            })
            .collect();
        Self {
            engine: ScriptEngine::with_settings(&options.script),
            flow_by_id,
            step_names,
            options,
            diagnostics,
            schedules: Vec::new(),
        }
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn flow(&mut self, idx: FlowIdx, file: &SourceFile, spec: &FlowFile) -> Flow {
        let root = YamlPath::root();
        if spec.steps.is_empty() {
            self.push(file.error(&root.key("steps"), "a flow needs at least one step"));
        }
        let start = match &spec.start {
            Some(name) => spec.steps.get_index_of(name).unwrap_or_else(|| {
                let hint = did_you_mean(name, spec.steps.keys().map(String::as_str));
                self.push(file.value_error(
                    &root.key("start"),
                    format!("start step \"{name}\" is not defined{hint}"),
                ));
                0
            }),
            None => 0,
        };
        self.check_channels(file, &root.key("channels"), spec.channels.as_deref());
        let steps: Vec<Step> = spec
            .steps
            .iter()
            .map(|(name, step)| self.step(idx, file, &root.key("steps").key(name), name, step))
            .collect();
        Flow {
            id: spec.flow.clone(),
            file: file.path.clone(),
            priority: spec.priority,
            interrupt: spec.interrupt,
            channels: spec.channels.clone(),
            start,
            step_by_name: spec
                .steps
                .keys()
                .enumerate()
                .map(|(i, name)| (name.clone(), i))
                .collect(),
            steps,
        }
    }

    fn check_channels(&mut self, file: &SourceFile, path: &YamlPath, channels: Option<&[String]>) {
        for (i, channel) in channels.unwrap_or_default().iter().enumerate() {
            if !self.options.channels.contains(channel) {
                let hint = did_you_mean(channel, self.options.channels.iter().map(String::as_str));
                self.push(file.value_error(
                    &path.index(i),
                    format!("channel \"{channel}\" is not configured{hint}"),
                ));
            }
        }
    }

    /// Warns about steps no flow's start step leads to (other flows' `goto: FLOW.STEP` count).
    fn warn_unreachable(&mut self, flows: &[(SourceFile, FlowFile)], compiled: &[Flow]) {
        let mut seen: Vec<Vec<bool>> = compiled
            .iter()
            .map(|f| vec![false; f.steps.len()])
            .collect();
        let mut todo: Vec<Target> = compiled
            .iter()
            .enumerate()
            .map(|(flow, f)| Target {
                flow,
                step: f.start,
            })
            .collect();
        while let Some(Target { flow, step }) = todo.pop() {
            let Some(mark) = seen.get_mut(flow).and_then(|steps| steps.get_mut(step)) else {
                continue;
            };
            if std::mem::replace(mark, true) {
                continue;
            }
            let s = &compiled[flow].steps[step];
            let ask = s.ask.as_ref();
            todo.extend(
                s.switch
                    .iter()
                    .map(|b| b.target)
                    .chain(s.goto)
                    .chain(s.next)
                    .chain(ask.and_then(|a| a.on_fail))
                    .chain(ask.and_then(|a| a.on_timeout)),
            );
        }
        for ((file, spec), seen) in flows.iter().zip(&seen) {
            for ((name, _), _) in spec.steps.iter().zip(seen).filter(|(_, seen)| !**seen) {
                let path = YamlPath::root().key("steps").key(name);
                self.push(file.warning(
                    &path,
                    format!("step \"{name}\" is never reached from the start step"),
                ));
            }
        }
    }

    fn step(
        &mut self,
        flow: FlowIdx,
        file: &SourceFile,
        path: &YamlPath,
        name: &str,
        spec: &StepSpec,
    ) -> Step {
        let ask = spec
            .ask
            .as_ref()
            .map(|ask| self.ask(flow, file, &path.key("ask"), spec, ask));
        if spec.end == Some(true) && (spec.goto.is_some() || spec.next.is_some()) {
            self.push(file.warning(
                &path.key("end"),
                "`end: true` is ignored because the step also has goto/next",
            ));
        }
        Step {
            name: name.to_owned(),
            set: self.set(file, &path.key("set"), spec),
            scripts: self.scripts(file, path, spec),
            tag: self.templates(file, &path.key("tag"), spec.tag.as_ref()),
            untag: self.templates(file, &path.key("untag"), spec.untag.as_ref()),
            send: self.messages(file, &path.key("send"), spec.send.as_ref()),
            handoff: match spec.handoff {
                Some(HandoffSpec::Pause(true)) => Some(None),
                Some(HandoffSpec::Until(until)) => Some(Some(until.resume_after.as_secs_i64())),
                Some(HandoffSpec::Pause(false)) | None => None,
            },
            remind: self.remind(file, &path.key("remind"), spec),
            ask,
            switch: self.switch(flow, file, &path.key("switch"), spec),
            goto: self.target(flow, file, &path.key("goto"), spec.goto.as_deref()),
            next: self.target(flow, file, &path.key("next"), spec.next.as_deref()),
            outside_window: self.outside_window(file, &path.key("outside_window"), spec),
        }
    }

    /// A step's `outside_window` template, checked like any message.
    fn outside_window(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        spec: &StepSpec,
    ) -> Option<Box<crate::message::Outbound>> {
        match spec.outside_window.as_ref()?.to_outbound() {
            Ok(message) => Some(Box::new(message)),
            Err(error) => {
                self.push(file.value_error(&path.join(&error.path), error.to_string()));
                None
            }
        }
    }

    fn set(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        spec: &StepSpec,
    ) -> Vec<(String, ValueTemplate)> {
        let Some(set) = &spec.set else {
            return Vec::new();
        };
        set.iter()
            .filter_map(|(name, value)| {
                self.value_template(file, &path.key(name), value)
                    .map(|tree| (name.clone(), tree))
            })
            .collect()
    }

    fn value_template(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        value: &serde_json::Value,
    ) -> Option<ValueTemplate> {
        match ValueTemplate::compile(&self.engine, value) {
            Ok(tree) => Some(tree),
            Err(errors) => {
                for error in errors {
                    self.push(file.value_error(&path.join(&error.path), error.error.to_string()));
                }
                None
            }
        }
    }

    fn template(&mut self, file: &SourceFile, path: &YamlPath, text: &str) -> Option<Template> {
        Template::compile(&self.engine, text)
            .map_err(|error| self.push(file.value_error(path, error.to_string())))
            .ok()
    }

    fn templates(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        texts: Option<&OneOrMany<String>>,
    ) -> Vec<Template> {
        let Some(texts) = texts else {
            return Vec::new();
        };
        let many = matches!(texts, OneOrMany::Many(_));
        texts
            .as_slice()
            .iter()
            .enumerate()
            .filter_map(|(i, text)| self.template(file, &item_path(path, many, i), text))
            .collect()
    }

    fn expr(&mut self, file: &SourceFile, path: &YamlPath, source: &str) -> Option<Expr> {
        self.engine
            .compile_expr(source)
            .map_err(|error| self.push(file.value_error(path, format!("in `{source}`: {error}"))))
            .ok()
    }

    fn scripts(&mut self, file: &SourceFile, path: &YamlPath, spec: &StepSpec) -> Vec<Program> {
        let mut programs = Vec::new();
        if let Some(name) = &spec.script {
            let script_path = self.options.scripts_dir.join(name);
            match std::fs::read_to_string(&script_path) {
                Ok(source) => {
                    let origin = ScriptOrigin {
                        file: script_path.display().to_string(),
                        start: Some((1, 1)),
                    };
                    match self.engine.compile_program(&source, origin) {
                        Ok(program) => programs.push(program),
                        Err(error) => {
                            self.push(script_error(&script_path, ScriptPlace::File, &error));
                        }
                    }
                }
                Err(error) => self.push(file.value_error(
                    &path.key("script"),
                    format!(
                        "cannot read script {}: {error}; scripts live in {}",
                        script_path.display(),
                        self.options.scripts_dir.display()
                    ),
                )),
            }
        }
        if let Some(source) = &spec.rhai {
            let content = file.map.content(&path.key("rhai"));
            let origin = ScriptOrigin {
                file: file.path.display().to_string(),
                start: content.map(|start| (start.line, start.col)),
            };
            match self.engine.compile_program(source, origin) {
                Ok(program) => programs.push(program),
                Err(error) => {
                    let place = ScriptPlace::Inline {
                        content,
                        value: file.map.locate(&path.key("rhai")),
                    };
                    self.push(script_error(&file.path, place, &error));
                }
            }
        }
        for program in &programs {
            self.check_calls(program);
        }
        programs
    }

    /// Reports calls of functions nothing defines (a typo, or an API that does not exist).
    fn check_calls(&mut self, program: &Program) {
        for call in self.engine.unknown_calls(program) {
            let (line, col) = program.origin.locate(call.line, call.col);
            self.push(Diagnostic::error(
                Path::new(&program.origin.file),
                Position::new(line, col),
                format!(
                    "script calls unknown function `{}`; see DESIGN §8 and the README for the script API",
                    call.name
                ),
            ));
        }
    }

    fn messages(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        specs: Option<&OneOrMany<MessageSpec>>,
    ) -> Vec<MessageTemplate> {
        let Some(specs) = specs else {
            return Vec::new();
        };
        let many = matches!(specs, OneOrMany::Many(_));
        specs
            .as_slice()
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| self.message(file, &item_path(path, many, i), spec))
            .collect()
    }

    fn message(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        spec: &MessageSpec,
    ) -> Option<MessageTemplate> {
        if let Err(error) = spec.kind_name() {
            self.push(file.error(path, error.to_string()));
            return None;
        }
        let issues = limits::check(spec);
        let fits = !issues.iter().any(|issue| issue.severity == Severity::Error);
        for issue in issues {
            let at = path.join(&issue.path);
            self.push(match issue.severity {
                Severity::Error => file.value_error(&at, issue.message),
                Severity::Warning => file.warning(&at, issue.message),
            });
        }
        let json = serde_json::to_value(spec).ok()?;
        let tree = self.value_template(file, path, &json)?;
        if !fits {
            return None;
        }
        if tree.as_const().is_none() {
            return Some(MessageTemplate::Dynamic(tree));
        }
        match spec.to_outbound() {
            Ok(message) => Some(MessageTemplate::Static(Box::new(Reply {
                message,
                fallback_text: spec.fallback_text.clone(),
                outside_window: None,
            }))),
            Err(error) => {
                self.push(file.value_error(&path.join(&error.path), error.to_string()));
                None
            }
        }
    }

    fn ask(
        &mut self,
        flow: FlowIdx,
        file: &SourceFile,
        path: &YamlPath,
        step: &StepSpec,
        spec: &crate::flow::model::AskSpec,
    ) -> Ask {
        if spec.kind == AskKind::Choice {
            let offers_options = step.send.as_ref().is_some_and(|send| {
                send.as_slice()
                    .iter()
                    .any(|m| !m.choices().is_empty() || m.buttons.is_some() || m.list.is_some())
            });
            // A script may send the menu itself (`send(#{ buttons: … })`).
            let scripted = step.script.is_some() || step.rhai.is_some();
            if !offers_options && !scripted {
                self.push(file.value_error(
                    &path.key("type"),
                    "an ask of type choice needs a buttons or list message in this step's send (or a script that sends one)",
                ));
            }
        }
        if spec.on_timeout.is_some() && spec.timeout.is_none() {
            self.push(file.warning(
                &path.key("on_timeout"),
                "on_timeout has no effect without a timeout",
            ));
        }
        let retry = match &spec.retry {
            None => Vec::new(),
            Some(RetrySpec::Text(text)) => {
                let message = MessageSpec {
                    text: Some(crate::message::spec::TextSpec::Body(text.clone())),
                    ..MessageSpec::default()
                };
                self.message(file, &path.key("retry"), &message)
                    .into_iter()
                    .collect()
            }
            Some(RetrySpec::Messages(messages)) => {
                self.messages(file, &path.key("retry"), Some(messages))
            }
        };
        Ask {
            save: spec.save.clone(),
            kind: spec.kind,
            retry,
            max_retries: spec.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            on_fail: self.target(flow, file, &path.key("on_fail"), spec.on_fail.as_deref()),
            timeout: spec.timeout,
            on_timeout: self.target(
                flow,
                file,
                &path.key("on_timeout"),
                spec.on_timeout.as_deref(),
            ),
        }
    }

    fn remind(&mut self, file: &SourceFile, path: &YamlPath, spec: &StepSpec) -> Option<Remind> {
        let remind = spec.remind.as_ref()?;
        let flow = self.flow_ref(file, &path.key("flow"), &remind.flow)?;
        let when = match (&remind.after, &remind.at) {
            (Some(after), None) => RemindAt::After(*after),
            (None, Some(at)) => RemindAt::At(self.template(file, &path.key("at"), at)?),
            _ => {
                self.push(file.error(
                    path,
                    "remind needs exactly one of `in` (a duration) or `at` (a time)",
                ));
                return None;
            }
        };
        Some(Remind { when, flow })
    }

    fn switch(
        &mut self,
        flow: FlowIdx,
        file: &SourceFile,
        path: &YamlPath,
        spec: &StepSpec,
    ) -> Vec<Branch> {
        let Some(branches) = &spec.switch else {
            return Vec::new();
        };
        let mut compiled = Vec::new();
        for (i, branch) in branches.iter().enumerate() {
            let at = path.index(i);
            let (condition, target_key, target) =
                match (&branch.condition, &branch.goto, &branch.otherwise) {
                    (Some(condition), Some(goto), None) => {
                        (self.expr(file, &at.key("if"), condition), "goto", goto)
                    }
                    (None, None, Some(otherwise)) => {
                        if i + 1 != branches.len() {
                            self.push(
                                file.warning(
                                    &at.key("else"),
                                    "branches after `else` are never taken",
                                ),
                            );
                        }
                        (None, "else", otherwise)
                    }
                    _ => {
                        self.push(file.error(
                            &at,
                            "a switch branch is `{if: CONDITION, goto: STEP}` or `{else: STEP}`",
                        ));
                        continue;
                    }
                };
            if branch.condition.is_some() && condition.is_none() {
                continue;
            }
            if let Some(target) = self.target(flow, file, &at.key(target_key), Some(target)) {
                compiled.push(Branch { condition, target });
            }
        }
        compiled
    }

    fn flow_ref(&mut self, file: &SourceFile, path: &YamlPath, name: &str) -> Option<FlowIdx> {
        let found = self.flow_by_id.get(name).copied();
        if found.is_none() {
            let hint = did_you_mean(name, self.flow_by_id.keys().map(String::as_str));
            self.push(file.value_error(path, format!("flow \"{name}\" is not defined{hint}")));
        }
        found
    }

    /// Resolves `goto`-style names: a step of this flow, else a flow, else `FLOW.STEP`.
    fn target(
        &mut self,
        flow: FlowIdx,
        file: &SourceFile,
        path: &YamlPath,
        name: Option<&str>,
    ) -> Option<Target> {
        let name = name?;
        let (steps, _) = &self.step_names[flow];
        if let Some(step) = steps.iter().position(|s| s == name) {
            return Some(Target { flow, step });
        }
        if let Some(&other) = self.flow_by_id.get(name) {
            return Some(Target {
                flow: other,
                step: self.step_names[other].1,
            });
        }
        if let Some((flow_id, step_name)) = name.split_once('.')
            && let Some(&other) = self.flow_by_id.get(flow_id)
        {
            let (steps, _) = &self.step_names[other];
            if let Some(step) = steps.iter().position(|s| s == step_name) {
                return Some(Target { flow: other, step });
            }
            let hint = did_you_mean(step_name, steps.iter().map(String::as_str));
            self.push(file.value_error(
                path,
                format!("flow \"{flow_id}\" has no step \"{step_name}\"{hint}"),
            ));
            return None;
        }
        let candidates: Vec<&str> = steps
            .iter()
            .map(String::as_str)
            .chain(self.flow_by_id.keys().map(String::as_str))
            .collect();
        let hint = did_you_mean(name, candidates);
        self.push(file.value_error(
            path,
            format!("\"{name}\" is neither a step of this flow nor a flow{hint}"),
        ));
        None
    }

    fn triggers(&mut self, flows: &[(SourceFile, FlowFile)], has_faq: bool) -> Vec<TriggerDef> {
        let mut defs = Vec::new();
        let mut keywords: HashMap<(String, i32), Vec<KeywordOwner<'_>>> = HashMap::new();
        for (idx, (file, flow)) in flows.iter().enumerate() {
            if self.flow_by_id.get(&flow.flow) != Some(&idx) {
                continue;
            }
            for (i, trigger) in flow.triggers.iter().enumerate() {
                let path = YamlPath::root().key("triggers").index(i);
                let Some(matcher) = self.matcher(file, &path, trigger, has_faq) else {
                    if let Some(spec) = &trigger.schedule {
                        let at = (idx, format!("{}#{i}", flow.flow));
                        self.schedule(file, &path, at, spec, trigger.when.as_deref());
                        self.warn_free_form_start(file, &path, flow);
                    }
                    continue;
                };
                if let Some(words) = &trigger.keywords {
                    let channels = flow.channels.as_deref().unwrap_or_default();
                    let many = matches!(words, OneOrMany::Many(_));
                    for (w, word) in words.as_slice().iter().enumerate() {
                        let taken = keywords
                            .entry((normalize(word), flow.priority))
                            .or_default();
                        let clash = taken.iter().find(|(other, other_channels)| {
                            *other != idx && channels_overlap(channels, other_channels)
                        });
                        if let Some((other, _)) = clash {
                            let message = format!(
                                "keyword \"{word}\" also starts flow \"{}\" at the same priority {}; give one flow a higher priority",
                                flows[*other].1.flow, flow.priority
                            );
                            self.push(
                                file.value_error(
                                    &item_path(&path.key("keywords"), many, w),
                                    message,
                                ),
                            );
                        }
                        taken.push((idx, channels));
                    }
                }
                let when = match &trigger.when {
                    Some(source) => match self.expr(file, &path.key("when"), source) {
                        Some(expr) => Some(expr),
                        None => continue,
                    },
                    None => None,
                };
                defs.push(TriggerDef {
                    flow: idx,
                    matcher,
                    when,
                });
            }
        }
        defs
    }

    /// Checks one trigger; schedules are checked here but run by the scheduler, not the router.
    fn matcher(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        trigger: &TriggerSpec,
        has_faq: bool,
    ) -> Option<Matcher> {
        let kinds = [
            ("keywords", trigger.keywords.is_some()),
            ("contains", trigger.contains.is_some()),
            ("regex", trigger.regex.is_some()),
            ("button", trigger.button.is_some()),
            ("event", trigger.event.is_some()),
            ("schedule", trigger.schedule.is_some()),
        ];
        let present: Vec<&str> = kinds
            .iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| *name)
            .collect();
        if present.len() != 1 {
            let message = if present.is_empty() {
                "a trigger needs one of keywords, contains, regex, button, event, schedule"
                    .to_owned()
            } else {
                format!(
                    "a trigger has exactly one kind, this one has {}; split it into several triggers",
                    present.join(" and ")
                )
            };
            self.push(file.error(path, message));
            return None;
        }
        if let Some(words) = &trigger.keywords {
            return self
                .phrases(file, &path.key("keywords"), words)
                .map(Matcher::Keywords);
        }
        if let Some(words) = &trigger.contains {
            return self
                .phrases(file, &path.key("contains"), words)
                .map(Matcher::Contains);
        }
        if let Some(pattern) = &trigger.regex {
            return match regex::Regex::new(&format!("(?i){pattern}")) {
                Ok(regex) => Some(Matcher::Regex(regex)),
                Err(error) => {
                    self.push(file.value_error(
                        &path.key("regex"),
                        format!("invalid regex: {}", last_line(&error.to_string())),
                    ));
                    None
                }
            };
        }
        if let Some(ids) = &trigger.button {
            return Some(Matcher::Button(ids.as_slice().to_vec()));
        }
        if let Some(event) = trigger.event {
            if has_faq && matches!(event, EventKind::Text | EventKind::Any) {
                self.push(file.warning(
                    &path.key("event"),
                    format!(
                        "`event: {}` catches every text before the FAQ collections can answer",
                        event.as_str()
                    ),
                ));
            }
            return Some(Matcher::Event(event));
        }
        None
    }

    fn phrases(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        words: &OneOrMany<String>,
    ) -> Option<Vec<String>> {
        let many = matches!(words, OneOrMany::Many(_));
        let mut out = Vec::new();
        for (i, word) in words.as_slice().iter().enumerate() {
            let normalized = normalize(word);
            if normalized.is_empty() {
                self.push(file.value_error(
                    &item_path(path, many, i),
                    format!(
                        "\"{word}\" has no letters or digits left to match after normalization"
                    ),
                ));
            } else {
                out.push(normalized);
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Checks a `schedule:` trigger and keeps it for the scheduler; `at` is the flow and the
    /// trigger's key.
    fn schedule(
        &mut self,
        file: &SourceFile,
        trigger_path: &YamlPath,
        at: (FlowIdx, String),
        spec: &crate::flow::model::ScheduleSpec,
        when: Option<&str>,
    ) {
        let path = trigger_path.key("schedule");
        let zone_ok = spec
            .timezone
            .as_ref()
            .is_none_or(|zone| zone.parse::<chrono_tz::Tz>().is_ok());
        if !zone_ok {
            self.push(file.value_error(
                &path.key("timezone"),
                format!(
                    "unknown time zone \"{}\"; use an IANA name such as Asia/Jakarta",
                    spec.timezone.as_deref().unwrap_or_default()
                ),
            ));
        }
        let zone = spec.timezone.as_deref().filter(|_| zone_ok);
        let cron = CronSchedule::parse(&spec.cron, zone)
            .map_err(|message| self.push(file.value_error(&path.key("cron"), message)))
            .ok();
        let audience = self.audience(file, &path.key("audience"), &spec.audience);
        let channel = self.audience_channel(file, &path.key("audience"), &spec.audience);
        let when = match when {
            Some(source) => match self.expr(file, &trigger_path.key("when"), source) {
                Some(expr) => Some(expr),
                None => return,
            },
            None => None,
        };
        let (Some(cron), Some(audience), Some(channel)) = (cron, audience, channel) else {
            return;
        };
        self.schedules.push(Scheduled {
            key: at.1,
            flow: at.0,
            cron,
            expression: spec.cron.clone(),
            timezone: zone.unwrap_or("UTC").to_owned(),
            audience,
            channel,
            when,
            catch_up: spec.catch_up.unwrap_or(Duration::from_secs(3600)),
        });
    }

    /// Warns when a scheduled flow's first step sends free-form messages with no
    /// `outside_window` template of its own: outside WhatsApp's 24-hour window only a template
    /// goes, so those contacts get the channel's template or nothing.
    fn warn_free_form_start(&mut self, file: &SourceFile, path: &YamlPath, flow: &FlowFile) {
        let start = flow
            .start
            .as_ref()
            .and_then(|name| flow.steps.get(name))
            .or_else(|| flow.steps.values().next());
        let Some(step) = start else {
            return;
        };
        let free_form = step.send.as_ref().is_some_and(|send| {
            send.as_slice()
                .iter()
                .any(|message| message.template.is_none())
        });
        if free_form && step.outside_window.is_none() {
            self.push(file.warning(
                &path.key("schedule"),
                format!(
                    "flow \"{}\" starts with a free-form message; contacts outside the 24-hour window get the channel's outside_window template instead, or nothing — give its first step an `outside_window:` template",
                    flow.flow
                ),
            ));
        }
    }

    /// An audience: exactly one of `tags`, `contacts`, `all: true`.
    fn audience(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        spec: &crate::flow::model::AudienceSpec,
    ) -> Option<Audience> {
        match (&spec.tags, &spec.contacts, spec.all == Some(true)) {
            (Some(tags), None, false) => Some(Audience::Tags(tags.clone())),
            (None, Some(contacts), false) => Some(Audience::Contacts(contacts.clone())),
            (None, None, true) => Some(Audience::All),
            _ => {
                self.push(file.error(
                    path,
                    "an audience is exactly one of `tags: [..]`, `contacts: [..]` or `all: true`",
                ));
                None
            }
        }
    }

    /// The channel an audience is on: the one it names, else the one non-simulator channel
    /// (an error when there are several), else the simulator.
    fn audience_channel(
        &mut self,
        file: &SourceFile,
        path: &YamlPath,
        spec: &crate::flow::model::AudienceSpec,
    ) -> Option<String> {
        if let Some(channel) = &spec.channel {
            self.check_channels(
                file,
                &path.key("channel"),
                Some(std::slice::from_ref(channel)),
            );
            return Some(channel.clone());
        }
        let real: Vec<&String> = self
            .options
            .channels
            .iter()
            .filter(|c| *c != "simulator")
            .collect();
        match real.as_slice() {
            [] => Some("simulator".to_owned()),
            [one] => Some((*one).clone()),
            several => {
                let list = several
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                self.push(file.error(path, format!("audience has no channel and several are configured ({list}); add `channel:`")));
                None
            }
        }
    }

    /// Warns about a question that matches another entry of its collection about as well as
    /// its own: customers asking it may get either answer.
    fn warn_faq_collisions(&mut self, file: &SourceFile, collection: &FaqCollection) {
        let index = crate::faq::FaqIndex::build(std::slice::from_ref(collection));
        let channel = collection
            .channels
            .as_ref()
            .and_then(|channels| channels.first())
            .map_or("simulator", String::as_str);
        for (e, entry) in collection.entries.iter().enumerate() {
            for (q, question) in entry.questions.iter().enumerate() {
                let hits = index.search(question, channel, 3);
                let Some(other) = hits
                    .iter()
                    .find(|hit| hit.entry != e && hit.score >= COLLISION_SCORE)
                else {
                    continue;
                };
                let path = YamlPath::root()
                    .key("entries")
                    .index(e)
                    .key("questions")
                    .index(q);
                let first = collection.entries[other.entry]
                    .questions
                    .first()
                    .map_or("", String::as_str);
                self.push(file.warning(
                    &path,
                    format!(
                        "\"{question}\" also matches entry {} (the one asking \"{first}\"), score {:.2}; customers asking it may get either answer — reword one of them",
                        other.entry, other.score
                    ),
                ));
            }
        }
    }

    fn faq(&mut self, file: &SourceFile, spec: &FaqFile) -> FaqCollection {
        let root = YamlPath::root();
        let threshold = spec.threshold.unwrap_or(0.5);
        for (key, value) in [
            ("threshold", spec.threshold),
            ("suggest_threshold", spec.suggest_threshold),
        ] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                self.push(
                    file.value_error(&root.key(key), format!("{key} is a score between 0 and 1")),
                );
            }
        }
        self.check_channels(file, &root.key("channels"), spec.channels.as_deref());
        let entries = spec
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| {
                let path = root.key("entries").index(i);
                if entry.questions.is_empty() {
                    self.push(file.error(
                        &path.key("questions"),
                        "an FAQ entry needs at least one question",
                    ));
                }
                let answer = match (&entry.answer, &entry.goto) {
                    (Some(answer), None) => {
                        FaqAnswer::Messages(self.messages(file, &path.key("answer"), Some(answer)))
                    }
                    (None, Some(goto)) => {
                        FaqAnswer::Goto(self.flow_ref(file, &path.key("goto"), goto)?)
                    }
                    _ => {
                        self.push(
                            file.error(&path, "an FAQ entry has exactly one of `answer` or `goto`"),
                        );
                        return None;
                    }
                };
                let answer_text = entry
                    .answer
                    .as_ref()
                    .and_then(|answer| serde_json::to_value(answer).ok())
                    .map(|answer| crate::faq::answer_text(&answer))
                    .unwrap_or_default();
                Some(FaqEntry {
                    questions: entry.questions.clone(),
                    answer,
                    answer_text,
                    tags: entry.tags.clone().unwrap_or_default(),
                    locale: entry.locale.clone(),
                })
            })
            .collect();
        FaqCollection {
            id: spec.faq.clone(),
            file: file.path.clone(),
            threshold,
            suggest_threshold: spec.suggest_threshold.unwrap_or(0.6 * threshold),
            channels: spec.channels.clone(),
            synonyms: spec.synonyms.clone().unwrap_or_default(),
            entries,
        }
    }

    /// Resolves a flow named by a setting (`fallback_flow`, `error_flow`), reporting a missing
    /// one at the setting in the config file when it came from one.
    fn setting_flow(&mut self, setting: &str, name: Option<&str>) -> Option<FlowIdx> {
        let name = name?;
        let found = self.flow_by_id.get(name).copied();
        if found.is_none() {
            let hint = did_you_mean(name, self.flow_by_id.keys().map(String::as_str));
            let (file, position) = self
                .options
                .places
                .get(setting)
                .cloned()
                .unwrap_or_else(|| (self.options.flows_dir.clone(), Position::new(1, 1)));
            let message = format!(
                "{setting} \"{name}\" is not a flow in {}{hint}",
                self.options.flows_dir.display()
            );
            self.push(Diagnostic::error(&file, position, message));
        }
        found
    }
}

/// A flow that claimed a keyword, with the channels it serves (empty: all).
type KeywordOwner<'a> = (FlowIdx, &'a [String]);

/// True when two flows' `channels` share one; an empty list means every channel.
fn channels_overlap(a: &[String], b: &[String]) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|c| b.contains(c))
}

/// `send` for a single message, `send[i]` for a list.
fn item_path(path: &YamlPath, many: bool, index: usize) -> YamlPath {
    if many {
        path.index(index)
    } else {
        path.clone()
    }
}

/// Where a script's text is, to turn Rhai's positions into the file's.
enum ScriptPlace {
    /// A file of its own: Rhai's positions are the file's.
    File,
    /// Inline in a flow file, starting at `content` (`None` for folded blocks, whose lines do
    /// not map back; the error is then reported at `value` with the script's own line).
    Inline {
        content: Option<Position>,
        value: Position,
    },
}

/// A script error at the offending character (block scalars keep one indentation, so columns
/// shift alike on every line).
fn script_error(file: &Path, place: ScriptPlace, error: &CompileError) -> Diagnostic {
    let (position, message) = match place {
        ScriptPlace::File => (
            Position::new(error.line, error.col),
            format!("script error: {error}"),
        ),
        ScriptPlace::Inline {
            content: Some(start),
            ..
        } => (
            Position::new(start.line + error.line - 1, start.col + error.col - 1),
            format!("script error: {error}"),
        ),
        ScriptPlace::Inline {
            content: None,
            value,
        } => (
            value,
            format!(
                "script error at line {} column {} of the script: {error}",
                error.line, error.col
            ),
        ),
    };
    Diagnostic::error(file, position, message)
}

/// The last line of a multi-line library error, which says what is wrong without repeating
/// (rewritten) input over several lines.
fn last_line(text: &str) -> &str {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim();
    line.strip_prefix("error: ").unwrap_or(line)
}
