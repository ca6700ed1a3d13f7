//! `-u user[:group]` resolved against the container's own /etc/passwd and /etc/group.

use crate::fsroot::Root;

use super::ContainerError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub additional: Vec<u32>,
}

pub fn resolve(rootfs: &Root, spec: &str, group_add: &[String]) -> Result<Ids, ContainerError> {
    let read = |p: &str| {
        let mut s = String::new();
        if let Ok(mut f) = rootfs.open_file(p) {
            let _ = std::io::Read::read_to_string(&mut f, &mut s);
        }
        s
    };
    let passwd = read("/etc/passwd");
    let group = read("/etc/group");
    resolve_in(&passwd, &group, spec, group_add)
}

fn resolve_in(
    passwd: &str,
    group: &str,
    spec: &str,
    group_add: &[String],
) -> Result<Ids, ContainerError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    let (uid, mut gid, name) = if u.is_empty() {
        (0, 0, "root".to_owned())
    } else if let Ok(uid) = u.parse::<u32>() {
        let entry = users.iter().find(|f| f[2] == u);
        (
            uid,
            entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
            entry.map(|f| f[0].to_owned()).unwrap_or_default(),
        )
    } else {
        let f = users.iter().find(|f| f[0] == u).ok_or_else(|| {
            ContainerError::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?;
        (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            u.to_owned(),
        )
    };
    let group_id = |g: &str| -> Result<u32, ContainerError> {
        if let Ok(id) = g.parse::<u32>() {
            return Ok(id);
        }
        groups
            .iter()
            .find(|f| f[0] == g)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| {
                ContainerError::Invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = group_id(g)?;
    }
    let mut additional: Vec<u32> = groups
        .iter()
        .filter(|f| !name.is_empty() && f.get(3).is_some_and(|m| m.split(',').any(|m| m == name)))
        .filter_map(|f| f[2].parse().ok())
        .filter(|g| *g != gid)
        .collect();
    for g in group_add {
        additional.push(group_id(g)?);
    }
    Ok(Ids {
        uid,
        gid,
        additional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nweb:x:1000:1000::/home/web:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nweb:x:1000:\nwheel:x:10:web\n";

    #[test]
    fn names_numbers_and_groups() {
        assert_eq!(
            resolve_in(PASSWD, GROUP, "", &[]).expect("root"),
            Ids {
                uid: 0,
                gid: 0,
                additional: vec![]
            }
        );
        assert_eq!(
            resolve_in(PASSWD, GROUP, "web", &[]).expect("web"),
            Ids {
                uid: 1000,
                gid: 1000,
                additional: vec![10]
            }
        );
        assert_eq!(
            resolve_in(PASSWD, GROUP, "1234:nogroup", &[])
                .expect("num")
                .gid,
            65534
        );
        assert_eq!(
            resolve_in(PASSWD, GROUP, "1234", &[])
                .expect("unknown uid")
                .uid,
            1234
        );
        assert!(
            resolve_in(PASSWD, GROUP, "ghost", &[]).is_err_and(|e| e.to_string().contains("ghost"))
        );
        assert!(resolve_in(PASSWD, GROUP, "web:nogrp", &[]).is_err());
    }
}
