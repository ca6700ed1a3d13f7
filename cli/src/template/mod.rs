//! A Go `text/template` subset for `--format` and `inspect -f`.
//!
//! ```text
//!  "{{.Name}}\t{{json .Config}}"  ──parse──►  [Action(.Name), Text("\t"), Action(json .Config)]
//!                                                   │
//!                               render(&Value) ─────┘──► "web\t{...}"
//! ```
//!
//! Supported: `{{.A.B}}`, `{{.}}`, `$` and `$var` (from `range $k, $v := ...` and `$x := ...`),
//! pipelines (`{{.Names | upper}}`), parentheses, string/number/bool literals, `{{- -}}` trim
//! markers, comments, `if`/`else`/`else if`/`range`/`with`/`end`, and the functions docker
//! offers: `json`, `upper`, `lower`, `title`, `join`, `split`, `truncate`, `pad`, `print`,
//! `println`, `printf`, `index`, `len`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`.
//! A field followed by arguments is a method call; `.Label "key"` looks the key up in the
//! row's `Labels` string (`k=v,k2=v2`), as docker's list formatters do.
//! Values print the way Go prints them: maps as `map[k:v]`, lists as `[a b]`, null as `<nil>`,
//! a missing key as `<no value>`.

mod eval;
mod parse;

use anyhow::Result;
use serde_json::Value;

use crate::data::Data;

pub use eval::print_value;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub(super) decl: Vec<String>,
    pub(super) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(super) struct Cmd {
    pub(super) args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(super) enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Func(String),
    Sub(Pipe),
}

impl Template {
    /// Parses `src`; errors name the problem like Go's parser does (`unexpected "}" in operand`).
    pub fn parse(src: &str) -> Result<Template> {
        Ok(Template {
            nodes: parse::parse(src)?,
        })
    }

    /// Renders the template against `data` (objects print with sorted keys, like Go maps).
    pub fn render(&self, data: &Value) -> Result<String> {
        self.render_data(&Data::from(data))
    }

    /// Renders the template against order-preserving data (raw daemon JSON).
    pub fn render_data(&self, data: &Data) -> Result<String> {
        eval::render(&self.nodes, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: Value) -> String {
        Template::parse(t)
            .expect("parse")
            .render(&v)
            .expect("render")
    }

    #[test]
    fn fields_and_nesting() {
        let v = json!({"Name": "/web", "State": {"Status": "running", "Pid": 42}});
        assert_eq!(
            render("{{.Name}} {{.State.Status}} {{.State.Pid}}", v.clone()),
            "/web running 42"
        );
        assert_eq!(render("{{.Nope}}", v.clone()), "<no value>");
        assert_eq!(render("x{{.State.Nope.Deeper}}y", v), "x<no value>y");
    }

    #[test]
    fn json_and_pipes() {
        let v = json!({"Config": {"Cmd": ["sh", "-c", "a && b"]}, "Names": "web"});
        assert_eq!(
            render("{{json .Config.Cmd}}", v.clone()),
            r#"["sh","-c","a \u0026\u0026 b"]"#
        );
        assert_eq!(render("{{.Names | upper}}", v.clone()), "WEB");
        assert_eq!(
            render("{{.Config.Cmd | json}}", v.clone()),
            r#"["sh","-c","a \u0026\u0026 b"]"#
        );
        assert_eq!(render("{{join .Config.Cmd \",\"}}", v), "sh,-c,a && b");
    }

    #[test]
    fn go_printing_of_composites() {
        let v = json!({"L": {"b": "2", "a": "1"}, "A": ["x", "y"], "N": null, "F": 0.5});
        assert_eq!(
            render("{{.L}} {{.A}} {{.N}} {{.F}}", v),
            "map[a:1 b:2] [x y] <nil> 0.5"
        );
    }

    #[test]
    fn nil_slices_and_maps_print_like_go() {
        let v = json!({"HostConfig": {"Binds": null, "Init": null}, "Config": {"Labels": null}});
        assert_eq!(
            render(
                "{{.HostConfig.Binds}} {{.HostConfig.Init}} {{.Config.Labels}}",
                v.clone()
            ),
            "[] <nil> map[]"
        );
        assert_eq!(render("{{if .HostConfig.Binds}}y{{else}}n{{end}}", v), "n");
    }

    #[test]
    fn control_flow() {
        let v = json!({"Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Running": false, "Labels": {"k": "v"}});
        assert_eq!(
            render("{{range .Mounts}}{{.Source}};{{end}}", v.clone()),
            "/a;/b;"
        );
        assert_eq!(
            render("{{if .Running}}up{{else}}down{{end}}", v.clone()),
            "down"
        );
        assert_eq!(
            render(
                "{{if .Running}}a{{else if .Labels}}b{{else}}c{{end}}",
                v.clone()
            ),
            "b"
        );
        assert_eq!(
            render("{{range $k, $v := .Labels}}{{$k}}={{$v}}{{end}}", v.clone()),
            "k=v"
        );
        assert_eq!(render("{{with .Labels}}{{.k}}{{end}}", v.clone()), "v");
        assert_eq!(
            render("{{range .Nothing}}x{{else}}empty{{end}}", v),
            "empty"
        );
    }

    #[test]
    fn functions() {
        let v =
            json!({"Labels": {"com.x": "1"}, "S": "hello world", "Ports": ["80/tcp"], "Count": 3});
        assert_eq!(render(r#"{{index .Labels "com.x"}}"#, v.clone()), "1");
        assert_eq!(render("{{index .Ports 0}}", v.clone()), "80/tcp");
        assert_eq!(render("{{len .Ports}}", v.clone()), "1");
        assert_eq!(render("{{title .S}}", v.clone()), "Hello World");
        assert_eq!(render("{{truncate .S 5}}", v.clone()), "hello");
        assert_eq!(
            render(r#"{{printf "%s-%d" .S .Count}}"#, v.clone()),
            "hello world-3"
        );
        assert_eq!(
            render(r#"{{if eq .Count 3}}three{{end}}"#, v.clone()),
            "three"
        );
        assert_eq!(
            render(r#"{{if and .S (gt .Count 2)}}yes{{end}}"#, v.clone()),
            "yes"
        );
        assert_eq!(render("{{split .S \" \"}}", v), "[hello world]");
    }

    #[test]
    fn trim_markers_and_comments() {
        let v = json!({"A": "a"});
        assert_eq!(render("x  {{- .A -}}  y{{/* note */}}", v), "xay");
    }

    #[test]
    fn label_method_on_list_rows() {
        let v = json!({"Labels": "a=1,com.b=two"});
        assert_eq!(render(r#"{{.Label "com.b"}}"#, v.clone()), "two");
        assert_eq!(render(r#"{{.Label "zzz"}}"#, v), "");
    }

    #[test]
    fn parse_errors() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{nosuchfunc .A}}").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
    }
}
