# fish completion for zomg, generated from zomg's command definitions by `zomg completion fish`; do not edit
complete -c zomg -f
function __zomg_boxes
    env ZOMG_TELEMETRY=off zomg box list --names 2>/dev/null
end
function __zomg_workspace_dirs
    __zomg_at '' any
    set -l ws (env ZOMG_TELEMETRY=off zomg box show --workspace -- $__zomg_pos[$argv[1]] 2>/dev/null)
    test -n "$ws"; and test -d "$ws"; or return
    set -l cur (string replace -r -- '^--[^=]*=' '' (commandline -ct))
    for dir in $ws/$cur*/
        string replace -- "$ws/" '' $dir
    end
end
# Where the cursor is: __zomg_at PATH N is true at the Nth positional of command PATH (N+: at it or
# after), PATH any anywhere before `--`, PATH rest at the command after `--`, PATH rest+ after that.
# It leaves the positional words in __zomg_pos.
function __zomg_at
    set -g __zomg_pos
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l path ''
    set -l npos 0
    set -l expect 0
    set -l rest -1
    for t in $tokens
        if test $rest -ge 0
            set rest (math $rest + 1)
            continue
        end
        if test $expect = 1
            set expect 0
            continue
        end
        switch $t
            case --
                set rest 0
                continue
            case '--*=*'
                continue
            case '-*'
                contains -- $t --boxes-dir --deployment-metrics --deployment-name --env --project --shell --unset-env --workdir; and set expect 1
                continue
        end
        set -l deeper (string trim -- "$path $t")
        if test $npos = 0; and contains -- $deeper 'box' 'box create' 'box list' 'box show' 'box edit' 'box rename' 'box rm' 'exec' 'console' 'setup' 'telemetry' 'telemetry status' 'telemetry on' 'telemetry off' 'telemetry log' 'telemetry reset' 'telemetry explain' 'telemetry flush' 'completion' 'help'
            set path $deeper
            continue
        end
        set -a __zomg_pos $t
        set npos (math $npos + 1)
    end
    test "$path" = "$argv[1]"; or return 1
    switch $argv[2]
        case any
            test $rest = -1
        case rest
            test $rest = 0
        case rest+
            test $rest -gt 0
        case '*+'
            test $rest = -1; and test $expect = 0; and test $npos -ge (string trim -r -c + -- $argv[2])
        case '*'
            test $rest = -1; and test $expect = 0; and test $npos = $argv[2]
    end
end
complete -c zomg -n '__zomg_at "" 0' -a box -d 'create, list, show, change and remove boxes'
complete -c zomg -n '__zomg_at "" 0' -a exec -d 'run a command inside a box'
complete -c zomg -n '__zomg_at "" 0' -a console -d 'open an interactive shell inside a box'
complete -c zomg -n '__zomg_at "" 0' -a setup -d 'configure zomg on this machine (and opt in to deployment metrics)'
complete -c zomg -n '__zomg_at "" 0' -a telemetry -d 'see or change what zomg'\''s usage telemetry does'
complete -c zomg -n '__zomg_at "" 0' -a completion -d 'print a shell completion script'
complete -c zomg -n '__zomg_at "" 0' -a help -d 'show the help of zomg or of a command (the same as --help)'
complete -c zomg -n '__zomg_at "" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "" any' -l version -d 'print the version and exit'
complete -c zomg -n '__zomg_at "box" 0' -a create -d 'create a box'
complete -c zomg -n '__zomg_at "box" 0' -a list -d 'list boxes'
complete -c zomg -n '__zomg_at "box" 0' -a show -d 'show one box'
complete -c zomg -n '__zomg_at "box" 0' -a edit -d 'change a box'\''s environment or project'
complete -c zomg -n '__zomg_at "box" 0' -a rename -d 'rename a box (its workspace moves with it)'
complete -c zomg -n '__zomg_at "box" 0' -a rm -d 'remove boxes (refuses one whose workspace holds files unless --force)'
complete -c zomg -n '__zomg_at "box" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "box create" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "box create" any' -l project -x -d 'group the box under a project'
complete -c zomg -n '__zomg_at "box create" any' -l env -x -d 'set an environment variable for the box'\''s commands (repeatable)'
complete -c zomg -n '__zomg_at "box list" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "box list" any' -l project -x -d 'only boxes of this project'
complete -c zomg -n '__zomg_at "box list" any' -l json -d 'print JSON instead of a table'
complete -c zomg -n '__zomg_at "box list" any' -l names -d 'print only the names, one per line (for scripts and shell completion)'
complete -c zomg -n '__zomg_at "box show" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "box show" any' -l json -d 'print JSON instead of a table'
complete -c zomg -n '__zomg_at "box show" any' -l workspace -d 'print only the workspace'\''s path (for scripts and shell completion)'
complete -c zomg -n '__zomg_at "box show" 0' -a '(__zomg_boxes)'
complete -c zomg -n '__zomg_at "box edit" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "box edit" any' -l env -x -d 'set an environment variable for the box'\''s commands (repeatable); replaces the variable'\''s value'
complete -c zomg -n '__zomg_at "box edit" any' -l unset-env -x -d 'remove an environment variable from the box (repeatable)'
complete -c zomg -n '__zomg_at "box edit" any' -l project -x -d 'move the box to this project'
complete -c zomg -n '__zomg_at "box edit" any' -l no-project -d 'take the box out of its project'
complete -c zomg -n '__zomg_at "box edit" 0' -a '(__zomg_boxes)'
complete -c zomg -n '__zomg_at "box rename" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "box rename" 0' -a '(__zomg_boxes)'
complete -c zomg -n '__zomg_at "box rm" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "box rm" any' -l force -s f -d 'remove it even if its workspace holds files or its metadata is damaged'
complete -c zomg -n '__zomg_at "box rm" 0+' -a '(__zomg_boxes)'
complete -c zomg -n '__zomg_at "exec" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "exec" any' -l env -x -d 'set an environment variable for this command (repeatable)'
complete -c zomg -n '__zomg_at "exec" any' -l workdir -x -a '(__zomg_workspace_dirs 1)' -d 'directory inside the workspace to run in'
complete -c zomg -n '__zomg_at "exec" 0' -a '(__zomg_boxes)'
complete -c zomg -n '__zomg_at "exec" rest' -a '(__fish_complete_command)'
complete -c zomg -n '__zomg_at "exec" rest+' -F
complete -c zomg -n '__zomg_at "console" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "console" any' -l shell -x -a '(__fish_complete_command)' -d 'the shell to run (default: $SHELL, then /bin/sh)'
complete -c zomg -n '__zomg_at "console" 0' -a '(__zomg_boxes)'
complete -c zomg -n '__zomg_at "setup" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "setup" any' -l boxes-dir -x -a '(__fish_complete_directories)' -d 'where boxes live'
complete -c zomg -n '__zomg_at "setup" any' -l deployment-name -x -d 'a name for this deployment (shown locally, never sent)'
complete -c zomg -n '__zomg_at "setup" any' -l deployment-metrics -x -a 'on off' -d 'send deployment metrics once a day (default off)'
complete -c zomg -n '__zomg_at "setup" any' -l no-input -d 'never ask; take only the options given'
complete -c zomg -n '__zomg_at "setup" any' -l show -d 'print the current answers and the deployment-metrics payload, change nothing'
complete -c zomg -n '__zomg_at "telemetry" 0' -a status -d 'show the mode, why, the endpoint and the installation id'
complete -c zomg -n '__zomg_at "telemetry" 0' -a on -d 'turn telemetry on'
complete -c zomg -n '__zomg_at "telemetry" 0' -a off -d 'turn telemetry off and delete the installation id and unsent events'
complete -c zomg -n '__zomg_at "telemetry" 0' -a log -d 'print each event to stderr instead of sending it'
complete -c zomg -n '__zomg_at "telemetry" 0' -a reset -d 'start afresh: a new installation id, and the unsent events and delivery state deleted'
complete -c zomg -n '__zomg_at "telemetry" 0' -a explain -d 'what is collected, an example payload, and how the mode is decided'
complete -c zomg -n '__zomg_at "telemetry" 0' -a flush -d 'send every unsent event now, for each data set that is on'
complete -c zomg -n '__zomg_at "telemetry" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "telemetry status" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "telemetry status" any' -l json -d 'print one JSON object'
complete -c zomg -n '__zomg_at "telemetry on" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "telemetry off" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "telemetry log" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "telemetry reset" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "telemetry explain" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "telemetry flush" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "completion" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "completion" 0' -a 'bash zsh fish'
complete -c zomg -n '__zomg_at "help" any' -l help -s h -d 'show this help and exit'
complete -c zomg -n '__zomg_at "help" 0' -a 'box exec console setup telemetry completion help'
