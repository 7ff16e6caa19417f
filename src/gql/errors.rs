//! How errors reach GraphQL clients: every error carries `extensions.code` from the one
//! catalogue; internal causes are logged here and replaced by a generic message with the
//! request id.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextResolve, NextSubscribe, NextValidation, ResolveInfo,
};
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet, Type, VariableDefinition,
};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{
    ErrorExtensionValues, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
use async_graphql::{Name, QueryPathSegment};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::context::RequestId;
use crate::error::{AppError, ErrorCode};
use crate::metrics::Metrics;

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        if let Some(cause) = err.cause() {
            tracing::error!(code = %err.code(), error = format!("{cause:#}"), "internal error");
        }
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", err.code().as_str());
        for (key, value) in err.extensions() {
            if let Ok(v) = Value::from_json(value.clone()) {
                extensions.set(*key, v);
            }
        }
        async_graphql::Error {
            message: err.message().to_string(),
            source: None,
            extensions: Some(extensions),
        }
    }
}

/// The code of a server error, if it has one.
pub fn code_of(err: &ServerError) -> Option<ErrorCode> {
    match err.extensions.as_ref()?.get("code")? {
        Value::String(code) => ErrorCode::parse(code),
        _ => None,
    }
}

fn with_code(mut err: ServerError, code: ErrorCode) -> ServerError {
    err.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
    err
}

/// Gives every error a code, enforces the alias limit, hides internal messages behind the
/// request id, and counts errors by code.
pub struct ErrorPolicy {
    pub max_aliases: usize,
    pub metrics: Metrics,
}

impl ExtensionFactory for ErrorPolicy {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorPolicyExtension {
            max_aliases: self.max_aliases,
            metrics: self.metrics.clone(),
            executed: AtomicBool::new(false),
            types: Arc::default(),
            failures: AtomicUsize::new(0),
            mutation: AtomicBool::new(false),
            operation: Arc::default(),
        })
    }
}

struct ErrorPolicyExtension {
    max_aliases: usize,
    metrics: Metrics,
    /// Execution began: async-graphql's own errors from then on concern an argument's value,
    /// even when every top-level field failed (and `data` is null).
    executed: AtomicBool,
    /// The type of each field that failed, and of each of their ancestors, by path of
    /// response keys: what [`propagate_nulls`] needs.
    types: Arc<Mutex<Types>>,
    /// Fields that failed so far: a field notes its type when one below it failed.
    failures: AtomicUsize,
    /// The operation is a mutation (see [`propagate_nulls`]).
    mutation: AtomicBool,
    /// The document and the name of the operation that runs: the order in which a null put
    /// back takes its place among its object's fields.
    operation: Arc<Mutex<Option<Operation>>>,
}

/// A request's document and the name of its operation that runs, if it was given.
type Operation = (Arc<ExecutableDocument>, Option<String>);

/// Field types by path of response keys (list indexes as numbers).
type Types = HashMap<Vec<String>, String>;

/// Propagates each failed non-null field's null to its nearest nullable ancestor, as the
/// GraphQL specification says ("Errors and Non-Null Fields"): async-graphql leaves the failed
/// field out of its object, or puts null in a list of non-null items, which a typed client
/// cannot read (a `[JSON!]!` missing, a `[Conversation!]!` holding null). With no nullable
/// ancestor, `data` is null — except in a mutation, whose every field async-graphql runs
/// whatever failed before it: there the failed root field is null and the others keep their
/// results (a rotated refresh token, a new job's id), whose side effects happened.
fn propagate_nulls(response: &mut Response, types: &Types, mutation: bool) {
    // The type at a path: a field's as noted, a list item's its list's item type.
    fn type_at(path: &[String], types: &Types) -> Option<String> {
        let (last, parent) = path.split_last()?;
        if last.parse::<usize>().is_ok() {
            let list = type_at(parent, types)?;
            let list = list.strip_suffix('!').unwrap_or(&list);
            Some(list.strip_prefix('[')?.strip_suffix(']')?.to_string())
        } else {
            types.get(path).cloned()
        }
    }
    let paths: Vec<Vec<String>> = response
        .errors
        .iter()
        .filter(|e| !e.path.is_empty())
        .map(|e| {
            e.path
                .iter()
                .map(|s| match s {
                    async_graphql::PathSegment::Field(name) => name.clone(),
                    async_graphql::PathSegment::Index(i) => i.to_string(),
                })
                .collect()
        })
        .collect();
    // What this pass nulled: a later error below it must not bring it back.
    let mut nulled: Vec<Vec<String>> = Vec::new();
    for path in paths {
        // The failed field, or the nearest of its ancestors that may be null.
        let mut at = path.as_slice();
        loop {
            if at.is_empty() {
                response.data = Value::Null;
                nulled.push(Vec::new());
                break;
            }
            match type_at(at, types) {
                Some(ty) if ty.ends_with('!') && !(mutation && at.len() == 1) => at = &at[..at.len() - 1],
                Some(_) => {
                    if !nulled.iter().any(|n| at.starts_with(n)) {
                        set_null(&mut response.data, at);
                        nulled.push(at.to_vec());
                    }
                    break;
                }
                // (Not noted: left as async-graphql made it.)
                None => break,
            }
        }
    }
}

/// The operation of `document` that runs: the one named, or the only one.
fn operation_in<'d>(document: &'d ExecutableDocument, name: Option<&str>) -> Option<&'d OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name).map(|o| &o.node),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().map(|o| &o.node)
        }
        _ => None,
    }
}

/// Calls `f` with each field a selection set selects, through its fragments, in the
/// document's order, with the type its fragments name (`None` outside any).
fn each_field<'d>(
    set: &'d SelectionSet,
    document: &'d ExecutableDocument,
    on: Option<&'d str>,
    visiting: &mut Vec<&'d str>,
    f: &mut dyn FnMut(&'d Field, Option<&'d str>),
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => f(&field.node, on),
            Selection::InlineFragment(fragment) => {
                let on = fragment.node.type_condition.as_ref().map(|c| c.node.on.node.as_str()).or(on);
                each_field(&fragment.node.selection_set.node, document, on, visiting, f)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                // (A cycle: validation refuses it.)
                if visiting.contains(&name) {
                    continue;
                }
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    visiting.push(name);
                    let on = Some(fragment.node.type_condition.node.on.node.as_str());
                    each_field(&fragment.node.selection_set.node, document, on, visiting, f);
                    visiting.pop();
                }
            }
        }
    }
}

/// Puts the fields of every object in `value` in the order `sets` select them (fragments
/// expanded where they are spread), as the specification's ordered maps say: async-graphql
/// answers an object's plain fields before its computed ones, and a null put back by
/// [`propagate_nulls`] comes last. JSON values (no selection) are left as they are.
fn order_as_selected(value: &mut Value, sets: &[&SelectionSet], document: &ExecutableDocument) {
    match value {
        Value::List(items) => {
            for item in items {
                order_as_selected(item, sets, document);
            }
        }
        Value::Object(map) => {
            let mut fields: Vec<&Field> = Vec::new();
            for set in sets {
                each_field(set, document, None, &mut Vec::new(), &mut |field, _| fields.push(field));
            }
            let place = |key: &str| {
                fields.iter().position(|f| f.response_key().node.as_str() == key).unwrap_or(usize::MAX)
            };
            if !map.keys().map(|k| place(k.as_str())).is_sorted() {
                map.sort_by(|a, _, b, _| place(a.as_str()).cmp(&place(b.as_str())));
            }
            for (key, child) in map.iter_mut() {
                let below: Vec<&SelectionSet> = fields
                    .iter()
                    .filter(|f| {
                        f.response_key().node.as_str() == key.as_str()
                            && !f.selection_set.node.items.is_empty()
                    })
                    .map(|f| &f.selection_set.node)
                    .collect();
                if !below.is_empty() {
                    order_as_selected(child, &below, document);
                }
            }
        }
        _ => {}
    }
}

/// Orders a response's data as its operation selects it ([`order_as_selected`]).
fn order_response(response: &mut Response, operation: Option<&Operation>) {
    if let Some((document, name)) = operation
        && let Some(operation) = operation_in(document, name.as_deref())
    {
        order_as_selected(&mut response.data, &[&operation.selection_set.node], document);
    }
}

/// Every variable written in `value`, an argument's value (or part of one) where the schema
/// expects type `location` (as the registry writes types, `[ID!]!`): the variable's name, the
/// type expected where it is written — inside a list literal, an item's; inside an input object
/// literal, its field's — and whether that place has a default (an argument or input field
/// with a default that is not null).
fn variable_usages<'a>(
    registry: &'a Registry,
    value: &'a async_graphql_value::Value,
    location: &'a str,
    has_default: bool,
    out: &mut Vec<(&'a str, &'a str, bool)>,
) {
    let nullable = match MetaTypeName::create(location) {
        MetaTypeName::NonNull(inner) => MetaTypeName::create(inner),
        other => other,
    };
    match (value, nullable) {
        (async_graphql_value::Value::Variable(name), _) => out.push((name.as_str(), location, has_default)),
        (async_graphql_value::Value::List(items), MetaTypeName::List(item)) => {
            for value in items {
                variable_usages(registry, value, item, false, out);
            }
        }
        (async_graphql_value::Value::Object(fields), MetaTypeName::Named(name)) => {
            if let Some(async_graphql::registry::MetaType::InputObject { input_fields, .. }) =
                registry.types.get(name)
            {
                for (key, value) in fields {
                    if let Some(field) = input_fields.get(key.as_str()) {
                        let has_default = field.default_value.as_deref().is_some_and(|d| d != "null");
                        variable_usages(registry, value, &field.ty, has_default, out);
                    }
                }
            }
        }
        // A single value where a list is expected is coerced to a list of it.
        (value, MetaTypeName::List(item)) => variable_usages(registry, value, item, false, out),
        _ => {}
    }
}

/// The first variable used where its type does not fit the argument's ("Variables in Allowed
/// Position"), as a message: async-graphql checks a variable's value against the argument,
/// not its declared type, so an `Upload!` variable passed to a `String` argument put the
/// multipart request's placeholder text in it.
fn misplaced_variable(
    registry: &Registry,
    document: &ExecutableDocument,
    operation: &OperationDefinition,
) -> Option<String> {
    // Whether a variable of type `variable` (with a default or not) may be used where
    // `location` is expected (the specification's AreTypesCompatible, with its rule for
    // nullable variables with a default).
    fn fits(variable: &Type, has_default: bool, location: &MetaTypeName<'_>) -> bool {
        match location {
            MetaTypeName::NonNull(inner) => {
                (!variable.nullable || has_default) && fits_base(&variable.base, &MetaTypeName::create(inner))
            }
            _ => fits_base(&variable.base, location),
        }
    }
    fn fits_base(variable: &BaseType, location: &MetaTypeName<'_>) -> bool {
        match (variable, location) {
            (BaseType::Named(name), MetaTypeName::Named(expected)) => name.as_str() == *expected,
            (BaseType::List(item), MetaTypeName::List(expected)) => {
                fits(item, false, &MetaTypeName::create(expected))
            }
            _ => false,
        }
    }
    let definitions: HashMap<&str, &VariableDefinition> =
        operation.variable_definitions.iter().map(|d| (d.node.name.node.as_str(), &d.node)).collect();
    let root = match operation.ty {
        OperationType::Query => registry.query_type.as_str(),
        OperationType::Mutation => registry.mutation_type.as_deref()?,
        OperationType::Subscription => registry.subscription_type.as_deref()?,
    };
    let mut work: Vec<(&SelectionSet, &str)> = vec![(&operation.selection_set.node, root)];
    let mut seen: HashSet<(*const SelectionSet, &str)> = HashSet::new();
    let mut found = None;
    while let Some((set, parent)) = work.pop() {
        if found.is_some() || !seen.insert((set as *const _, parent)) {
            continue;
        }
        each_field(set, document, None, &mut Vec::new(), &mut |field, on| {
            let owner = on.unwrap_or(parent);
            let Some(meta) =
                registry.types.get(owner).and_then(|t| t.field_by_name(field.name.node.as_str()))
            else {
                return;
            };
            for (argument, value) in &field.arguments {
                let Some(expected) = meta.args.get(argument.node.as_str()) else { continue };
                let mut used = Vec::new();
                let has_default = expected.default_value.as_deref().is_some_and(|d| d != "null");
                variable_usages(registry, &value.node, &expected.ty, has_default, &mut used);
                for (variable, location, location_default) in used {
                    if let Some(definition) = definitions.get(variable)
                        // (A default that is not null, the variable's or the location's, stands
                        // in for a nullable variable left null.)
                        && !fits(
                            &definition.var_type.node,
                            definition
                                .default_value
                                .as_ref()
                                .is_some_and(|d| !matches!(d.node, async_graphql::Value::Null))
                                || location_default,
                            &MetaTypeName::create(location),
                        )
                        && found.is_none()
                    {
                        let inside = if location == expected.ty.as_str() {
                            String::new()
                        } else {
                            format!(" where it expects {location}")
                        };
                        found = Some(format!(
                            "variable ${variable} of type {} cannot be used in argument {}.{} of type {}{inside}",
                            definition.var_type.node, field.name.node, argument.node, expected.ty
                        ));
                    }
                }
            }
            if !field.selection_set.node.items.is_empty() {
                work.push((&field.selection_set.node, MetaTypeName::concrete_typename(&meta.ty)));
            }
        });
    }
    found
}

/// Sets the value at `path` (response keys and list indexes) to null: a field left out of
/// its object is put back as null, and an object async-graphql nulled because every field
/// of it failed is put back as an object of nulls. Nothing happens when the path leads
/// nowhere.
fn set_null(data: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    // (async-graphql nulls data itself when every root field failed.)
    if matches!(data, Value::Null) {
        *data = Value::Object(Default::default());
    }
    let mut current = data;
    for (n, segment) in parents.iter().enumerate() {
        let next_is_field = path[n + 1].parse::<usize>().is_err();
        if matches!(current, Value::Null) && segment.parse::<usize>().is_err() {
            return;
        }
        current = match current {
            Value::Object(map) => match map.get_mut(segment.as_str()) {
                Some(v) => v,
                None => return,
            },
            Value::List(items) => match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
        if matches!(current, Value::Null) && next_is_field {
            *current = Value::Object(Default::default());
        }
    }
    match current {
        Value::Object(map) => {
            map.insert(Name::new(last), Value::Null);
        }
        Value::List(items) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

/// A request refused before it runs, as validation refuses one (`GRAPHQL_VALIDATION_FAILED`).
fn invalid_request(message: String) -> ServerError {
    with_code(ServerError::new(message, None), ErrorCode::GraphqlValidationFailed)
}

/// The text async-graphql's multipart support puts in a variable for an uploaded file,
/// followed by the upload's index.
const UPLOAD_MARKER: &str = "#__graphql_file__:";

/// The refusal of a text that names an upload it is not.
fn forged(text: &str) -> ServerError {
    let shown: String = text.chars().take(40).collect();
    with_code(
        ServerError::new(
            format!("the text {shown:?} names no uploaded file: send files as a multipart request"),
            None,
        ),
        ErrorCode::BadUserInput,
    )
}

/// The first string of a parsed document (as JSON) that starts with the upload marker.
fn forged_upload_in_document(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => s.starts_with(UPLOAD_MARKER).then(|| s.clone()),
        serde_json::Value::Array(items) => items.iter().find_map(forged_upload_in_document),
        serde_json::Value::Object(fields) => fields.values().find_map(forged_upload_in_document),
        _ => None,
    }
}

/// The first string in `value` that names an upload this request does not have (`uploads`
/// of them): async-graphql's `Upload` panics on a marker whose index is not a number.
fn forged_upload(value: &Value, uploads: usize) -> Option<String> {
    match value {
        Value::String(s) => s
            .strip_prefix(UPLOAD_MARKER)
            .filter(|index| index.parse::<usize>().map_or(true, |i| i >= uploads))
            .map(|_| s.clone()),
        Value::List(items) => items.iter().find_map(|v| forged_upload(v, uploads)),
        Value::Object(fields) => fields.values().find_map(|v| forged_upload(v, uploads)),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Extension for ErrorPolicyExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let executed = self.executed.load(Ordering::Relaxed);
        for err in &mut response.errors {
            let code = match code_of(err) {
                Some(code) => code,
                // async-graphql's own errors: before execution they concern the request
                // ("Unknown operation named …"), during it an argument's value.
                None => {
                    let code = if executed { ErrorCode::BadUserInput } else { ErrorCode::BadRequest };
                    *err = with_code(err.clone(), code);
                    code
                }
            };
            self.metrics.graphql_error(code);
        }
        response
    }

    /// Only resolvers fail with `INTERNAL`; the request's data (with its id) is attached by
    /// the time execution runs, not yet when `request` starts.
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        self.executed.store(true, Ordering::Relaxed);
        let mut response = next.run(ctx, operation_name).await;
        if !response.errors.is_empty() {
            let types = self.types.lock().unwrap_or_else(|e| e.into_inner());
            propagate_nulls(&mut response, &types, self.mutation.load(Ordering::Relaxed));
        } else if matches!(response.data, Value::Null) {
            // Every root field skipped (`@skip`, `@include`): nothing was selected, and no
            // error nulled `data`.
            response.data = Value::Object(Default::default());
        }
        order_response(&mut response, self.operation.lock().unwrap_or_else(|e| e.into_inner()).as_ref());
        let request_id = ctx.data_opt::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        for err in &mut response.errors {
            if code_of(err) == Some(ErrorCode::Internal) {
                err.message = format!("internal error; quote request id {request_id} when reporting it");
                err.extensions.get_or_insert_with(Default::default).set("requestId", request_id.clone());
            }
        }
        response
    }

    /// Notes the types [`propagate_nulls`] reads: of a field that failed, and of each field
    /// below which one failed (nothing for a request without errors).
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let (path, return_type) = (info.path_node, info.return_type);
        let before = self.failures.load(Ordering::Relaxed);
        let result = next.run(ctx, info).await;
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        // (A list's item is read from its list's type.)
        let item = matches!(path.segment, QueryPathSegment::Index(_));
        if !item && self.failures.load(Ordering::Relaxed) != before {
            self.types
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_string_vec(), return_type.into());
        }
        result
    }

    /// Each event of a subscription gets its nulls propagated, and its fields ordered, as a
    /// query's response does.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // (The request is prepared once the stream runs: its operation is read then.)
        let (types, operation) = (self.types.clone(), self.operation.clone());
        next.run(ctx, stream)
            .map(move |mut response| {
                if !response.errors.is_empty() {
                    let types = types.lock().unwrap_or_else(|e| e.into_inner());
                    propagate_nulls(&mut response, &types, false);
                }
                order_response(&mut response, operation.lock().unwrap_or_else(|e| e.into_inner()).as_ref());
                response
            })
            .boxed()
    }

    /// A variable may name an upload only as the multipart request made it: a client's own
    /// `#__graphql_file__:…` text made async-graphql panic (HTTP 500, a dropped WebSocket).
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        let mut request = request;
        let uploads = request.uploads.len();
        if let Some(text) = request.variables.iter().find_map(|(_, v)| forged_upload(v, uploads)) {
            return Err(forged(&text));
        }
        // Before async-graphql parses the query (its parser recurses without a limit on values)
        // and walks its fragments (its directive count expands every spread).
        if nests_deeper_than(&request.query, MAX_NESTING) {
            return Err(with_code(
                ServerError::new(format!("the query nests brackets more than {MAX_NESTING} deep"), None),
                ErrorCode::GraphqlParseFailed,
            ));
        }
        let given: HashSet<Name> = request.variables.keys().cloned().collect();
        // (Variables holding a file: the multipart request put its placeholder in them.)
        let holding_files: HashSet<Name> = request
            .variables
            .iter()
            .filter(|(_, v)| forged_upload(v, 0).is_some())
            .map(|(name, _)| name.clone())
            .collect();
        let chosen = request.operation_name.clone();
        // (Parsed once: async-graphql reuses the document. A parse error is left to it.)
        if let Ok(document) = request.parsed_query() {
            // The operation that runs: named, or the only one (an unknown name is left to
            // async-graphql's own refusal).
            let operation = match (&document.operations, chosen.as_deref()) {
                (DocumentOperations::Single(operation), _) => Some(operation),
                (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
                (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
                    operations.values().next()
                }
                _ => None,
            };
            *self.operation.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((Arc::new(document.clone()), chosen.clone()));
            if let Some(operation) = operation {
                self.mutation.store(operation.node.ty == OperationType::Mutation, Ordering::Relaxed);
                // A file goes only into a variable of type Upload: the multipart map may point
                // anywhere, and a file mapped into a `String` (or into an input object's
                // field) stored the placeholder text as a dataset's name or a question.
                fn base(ty: &Type) -> &str {
                    match &ty.base {
                        BaseType::Named(name) => name.as_str(),
                        BaseType::List(item) => base(item),
                    }
                }
                if let Some(definition) = operation
                    .node
                    .variable_definitions
                    .iter()
                    .map(|d| &d.node)
                    .find(|d| base(&d.var_type.node) != "Upload" && holding_files.contains(&d.name.node))
                {
                    return Err(invalid_request(format!(
                        "variable ${} is of type {}: a file can only be given to a variable of type Upload",
                        definition.name.node, definition.var_type.node
                    )));
                }
                // A required variable left out (what `JSON.stringify` does with `undefined`)
                // is a request error, as one given as null is, not a field error after other
                // fields ran.
                if let Some(definition) =
                    operation.node.variable_definitions.iter().map(|d| &d.node).find(|d| {
                        !d.var_type.node.nullable
                            && d.default_value.is_none()
                            && !given.contains(&d.name.node)
                    })
                {
                    return Err(invalid_request(format!(
                        "variable ${} ({}) has no value: give it in variables",
                        definition.name.node, definition.var_type.node
                    )));
                }
            }
        }
        if let Ok(document) = request.parsed_query()
            && expanded_fields(document) > MAX_EXPANDED_FIELDS
        {
            return Err(with_code(
                ServerError::new(
                    format!(
                        "the query expands to more than {MAX_EXPANDED_FIELDS} fields through its fragments"
                    ),
                    None,
                ),
                ErrorCode::QueryTooComplex,
            ));
        }
        // (After the expansion's limit: the check walks the fragments where they are spread.)
        if let Ok(document) = request.parsed_query()
            && let Some(operation) = operation_in(document, chosen.as_deref())
            && let Some(message) = misplaced_variable(&ctx.schema_env.registry, document, operation)
        {
            return Err(invalid_request(message));
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document =
            next.run(ctx, query, variables).await.map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))?;
        // The document's own strings (arguments, directives, variables' defaults, in
        // operations and fragments) never name an upload: only the multipart request puts
        // markers, in variables.
        if let Some(text) = serde_json::to_value(&document).ok().as_ref().and_then(forged_upload_in_document)
        {
            return Err(forged(&text));
        }
        let aliases = count_aliases(&document);
        if aliases > self.max_aliases {
            return Err(with_code(
                ServerError::new(
                    format!("query uses {aliases} aliases; the limit is {}", self.max_aliases),
                    None,
                ),
                ErrorCode::QueryTooComplex,
            ));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    // async-graphql reports its limits with these messages (a test pins them).
                    let code = match e.message.as_str() {
                        "Query is nested too deep." | "Query is too complex." => ErrorCode::QueryTooComplex,
                        _ => ErrorCode::GraphqlValidationFailed,
                    };
                    with_code(e, code)
                })
                .collect()
        })
    }
}

/// The deepest a query may nest `{`, `[` and `(` (selections, list and object values,
/// arguments). async-graphql's parser recurses once per level of a value without a limit: a
/// few thousand nested `[` overflowed a worker thread's stack, which aborts the process.
pub const MAX_NESTING: usize = 128;

/// The most fields a query may select once its fragment spreads are expanded. Fragments that
/// each spread the next twice double the work of validation with every level (30 of them,
/// 1.2 KB, held a worker thread for an hour).
const MAX_EXPANDED_FIELDS: u64 = 10_000;

/// Whether `query` nests brackets deeper than `max`, outside strings and comments. Read
/// before the query is parsed.
pub fn nests_deeper_than(query: &str, max: usize) -> bool {
    let bytes = query.as_bytes();
    let (mut depth, mut i) = (0usize, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                // A block string ends at the next unescaped `"""`.
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// The fields a document's operations select with every fragment spread expanded, each
/// fragment counted once and reused (a cycle counts nothing: validation refuses it).
fn expanded_fields(document: &ExecutableDocument) -> u64 {
    use std::collections::HashMap;
    fn in_set<'a>(
        set: &'a SelectionSet,
        document: &'a ExecutableDocument,
        memo: &mut HashMap<&'a str, u64>,
        visiting: &mut Vec<&'a str>,
    ) -> u64 {
        set.items.iter().fold(0u64, |total, item| {
            let n = match &item.node {
                Selection::Field(field) => {
                    1u64.saturating_add(in_set(&field.node.selection_set.node, document, memo, visiting))
                }
                Selection::InlineFragment(fragment) => {
                    in_set(&fragment.node.selection_set.node, document, memo, visiting)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some(&n) = memo.get(name) {
                        n
                    } else if visiting.contains(&name) {
                        0
                    } else if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                        visiting.push(name);
                        let n = in_set(&fragment.node.selection_set.node, document, memo, visiting);
                        visiting.pop();
                        memo.insert(name, n);
                        n
                    } else {
                        0
                    }
                }
            };
            total.saturating_add(n)
        })
    }
    let mut memo = HashMap::new();
    document.operations.iter().fold(0u64, |total, (_, op)| {
        total.saturating_add(in_set(&op.node.selection_set.node, document, &mut memo, &mut Vec::new()))
    })
}

/// Aliased fields in every operation and fragment of a document.
fn count_aliases(document: &ExecutableDocument) -> usize {
    fn in_set(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    usize::from(field.node.alias.is_some()) + in_set(&field.node.selection_set.node)
                }
                Selection::InlineFragment(fragment) => in_set(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    document.operations.iter().map(|(_, op)| in_set(&op.node.selection_set.node)).sum::<usize>()
        + document.fragments.values().map(|f| in_set(&f.node.selection_set.node)).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::PathSegment;

    fn error_at(path: &[&str]) -> ServerError {
        let mut error = ServerError::new("failed", None);
        error.path = path
            .iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => PathSegment::Index(i),
                Err(_) => PathSegment::Field(s.to_string()),
            })
            .collect();
        error
    }

    fn types(entries: &[(&[&str], &str)]) -> Types {
        entries
            .iter()
            .map(|(path, ty)| (path.iter().map(|s| s.to_string()).collect(), ty.to_string()))
            .collect()
    }

    fn propagated(
        data: serde_json::Value,
        errors: &[&[&str]],
        types: &Types,
        mutation: bool,
    ) -> serde_json::Value {
        let mut response = Response::new(Value::from_json(data).unwrap());
        response.errors = errors.iter().map(|p| error_at(p)).collect();
        propagate_nulls(&mut response, types, mutation);
        response.data.into_json().unwrap()
    }

    /// The response's data, keys in their order, after propagation in the light of `query`.
    fn propagated_in_order(
        query: &str,
        operation: Option<&str>,
        data: serde_json::Value,
        errors: &[&[&str]],
        types: &Types,
    ) -> String {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let mut response = Response::new(Value::from_json(data).unwrap());
        response.errors = errors.iter().map(|p| error_at(p)).collect();
        let operation = (Arc::new(document), operation.map(str::to_string));
        propagate_nulls(&mut response, types, false);
        order_response(&mut response, Some(&operation));
        response.data.to_string()
    }

    #[test]
    fn a_null_put_back_takes_its_place_in_the_query() {
        use serde_json::json;
        let t = types(&[
            (&["a"], "String"),
            (&["list"], "[Item!]!"),
            (&["list", "0", "name"], "String"),
            (&["list", "0", "size"], "Int"),
        ]);
        // A root field left out goes back between its neighbours.
        let got = propagated_in_order("{ b: me a c: me }", None, json!({ "b": 1, "c": 3 }), &[&["a"]], &t);
        assert_eq!(got, "{b: 1, a: null, c: 3}");
        // Through fragments, in a list's item, in the operation that ran.
        let got = propagated_in_order(
            "query Other { a } query Mine { list { id ...F } } fragment F on Item { size ... on Item { name } }",
            Some("Mine"),
            json!({ "list": [null] }),
            &[&["list", "0", "name"], &["list", "0", "size"]],
            &t,
        );
        assert_eq!(got, "{list: [{size: null, name: null}]}");
        let got = propagated_in_order(
            "{ list { name id size } }",
            None,
            json!({ "list": [{ "id": 1 }] }),
            &[&["list", "0", "size"], &["list", "0", "name"]],
            &t,
        );
        assert_eq!(got, "{list: [{name: null, id: 1, size: null}]}");
        // An operation that cannot be told (several, none named): the null comes last.
        let got =
            propagated_in_order("query X { a b } query Y { a b }", None, json!({ "b": 1 }), &[&["a"]], &t);
        assert_eq!(got, "{b: 1, a: null}");
    }

    #[test]
    fn a_failed_non_null_field_nulls_its_nearest_nullable_ancestor() {
        use serde_json::json;
        let t = types(&[
            (&["dataset"], "Dataset"),
            (&["dataset", "preview"], "[JSON!]!"),
            (&["me"], "User"),
            (&["list"], "[Item!]!"),
            (&["list", "name"], "String"),
            (&["list", "0", "name"], "String"),
            (&["list", "1", "name"], "String"),
            (&["list", "0", "rows"], "[JSON!]!"),
        ]);
        // A non-null field left out: its nullable parent is null.
        let got = propagated(
            json!({ "dataset": { "id": "1" }, "me": { "id": "u" } }),
            &[&["dataset", "preview"]],
            &t,
            false,
        );
        assert_eq!(got, json!({ "dataset": null, "me": { "id": "u" } }));
        // A nullable field left out is put back as null.
        let got = propagated(json!({ "me": { "id": "u" } }), &[&["dataset"]], &t, false);
        assert_eq!(got, json!({ "dataset": null, "me": { "id": "u" } }));
        // Through a list of non-null items to the root: data is null.
        let got = propagated(json!({ "list": [null, { "id": 2 }] }), &[&["list", "0", "rows"]], &t, false);
        assert_eq!(got, serde_json::Value::Null);
        // An object async-graphql nulled because its every field failed: an object of nulls.
        let got = propagated(
            json!({ "list": [null, null] }),
            &[&["list", "0", "name"], &["list", "1", "name"]],
            &t,
            false,
        );
        assert_eq!(got, json!({ "list": [{ "name": null }, { "name": null }] }));
        // Every root field failed, each nullable: data holds their nulls.
        let got = propagated(serde_json::Value::Null, &[&["dataset"], &["me"]], &t, false);
        assert_eq!(got, json!({ "dataset": null, "me": null }));
        // What one error nulled, another below it does not bring back.
        let t2 = types(&[
            (&["dataset"], "Dataset"),
            (&["dataset", "preview"], "[JSON!]!"),
            (&["dataset", "parent"], "Dataset"),
        ]);
        let got = propagated(
            json!({ "dataset": { "id": "1" } }),
            &[&["dataset", "preview"], &["dataset", "parent"]],
            &t2,
            false,
        );
        assert_eq!(got, json!({ "dataset": null }));
        // In a mutation the other fields keep their results: a failed root field is null.
        let t3 = types(&[(&["a"], "Boolean!"), (&["b"], "Job!")]);
        let got = propagated(json!({ "a": true }), &[&["b"]], &t3, true);
        assert_eq!(got, json!({ "a": true, "b": null }));
        let got = propagated(json!({ "a": true }), &[&["b"]], &t3, false);
        assert_eq!(got, serde_json::Value::Null);
        let got = propagated(serde_json::Value::Null, &[&["b"]], &t3, true);
        assert_eq!(got, json!({ "b": null }), "a mutation's only field failed");
    }
}
