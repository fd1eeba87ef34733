# bash completion for recker(1), and recker-direct, which takes the same arguments.
# Installed as /usr/share/bash-completion/completions/recker; the options are those of
# Sources/ReckerCLI/Options.swift (`recker --help`; valueFlags, shortFlags, switches), without
# the two it refuses (--http3, --proxy-insecure). Long options are taken in any case (--URL).

_recker()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -n =: || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
    fi

    # Options that take a value, by what the value is (Options.valueFlags and their letters).
    local file_opts='-o --output -D --dump-header -T --upload-file --socket --unix-socket
        --cacert -E --cert --key -z --time-cond --netrc-file'
    local at_file_opts='-d --data --data-ascii --data-binary --data-urlencode --json -H --header -w --write-out -F --form'
    local free_opts='--data-raw --form-string -u --user -A --user-agent -e --referer
        -m --max-time --connect-timeout --max-redirs --retry --retry-delay --retry-max-time
        --url --resolve --connect-to -x --proxy --noproxy -U --proxy-user -r --range
        --max-filesize --ciphers --parallel-max'
    local value_opts=" -X --request --output-dir --capath -b --cookie -c --concurrency --cookie-jar
        -K --config -C --continue-at --proto --proto-redir --proto-default --tls-max $file_opts $at_file_opts $free_opts "
    value_opts=${value_opts//$'\n'/ }

    # curl takes long options in any case (--URL); compare them in lower case.
    local lprev=$prev lcur=$cur
    [[ $lprev == --* ]] && lprev=${lprev,,}
    [[ $lcur == --* ]] && lcur=${lcur,,}
    # Bundled letters ending in a value-taking one (-sX, -sm) want that one's value.
    if [[ $lprev == -[!-]?* && $value_opts == *" -${lprev: -1} "* ]]; then
        local k letters=${lprev#-}
        for ((k = 0; k < ${#letters} - 1; k++)); do
            [[ $value_opts == *" -${letters:k:1} "* ]] && break
        done
        ((k == ${#letters} - 1)) && lprev=-${lprev: -1}
    fi

    # The subcommand: the first word that is neither an option nor an option's value.
    local i w sub='' skip=''
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if [[ -n $skip ]]; then skip=''; continue; fi
        [[ $w == --* ]] && w=${w,,}
        case $w in
            --) break ;;
            -?*)
                # A value-taking option, or bundled letters ending in one (-sXPOST takes its
                # value in the word; -sX takes the next one).
                if [[ $value_opts == *" $w "* ]]; then
                    skip=1
                elif [[ $w != --* && $value_opts == *" -${w: -1} "* ]]; then
                    local j letters=${w#-}
                    for ((j = 0; j < ${#letters}; j++)); do
                        [[ $value_opts == *" -${letters:j:1} "* ]] && break
                    done
                    ((j == ${#letters} - 1)) && skip=1
                fi ;;
            *) sub=$w; break ;;
        esac
    done

    case $lprev in
        -X|--request)
            COMPREPLY=($(compgen -W 'GET HEAD POST PUT PATCH DELETE OPTIONS' -- "$cur"))
            return ;;
        --output-dir|--capath)
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
        -b|--cookie)
            # 'NAME=VALUE; ...' is typed; without '=' the value names a cookie file.
            [[ $cur != *=* && $sub != batch ]] && COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        -c|--cookie-jar|--concurrency)
            # -c N is batch's concurrency; elsewhere -c FILE is the cookie jar (- for stdout).
            [[ $sub != batch && $lprev != --concurrency ]] && COMPREPLY=($(compgen -f -- "$cur") $(compgen -W '-' -- "$cur"))
            return ;;
        -K|--config)
            # curl's config syntax; - reads standard input.
            COMPREPLY=($(compgen -f -- "$cur") $(compgen -W '-' -- "$cur"))
            return ;;
        -C|--continue-at)
            # - resumes from the output file's size; else a byte offset.
            COMPREPLY=($(compgen -W '-' -- "$cur"))
            return ;;
        --proto|--proto-redir)
            COMPREPLY=($(compgen -W '=https =http,https -http +http http https all' -- "$cur"))
            return ;;
        --proto-default)
            COMPREPLY=($(compgen -W 'http https' -- "$cur"))
            return ;;
        --tls-max)
            COMPREPLY=($(compgen -W '1.0 1.1 1.2 1.3 default' -- "$cur"))
            return ;;
        -H|--header)
            if [[ $cur == @* ]]; then
                COMPREPLY=($(compgen -f -P @ -- "${cur#@}"))
            else
                local IFS=$'\n'
                COMPREPLY=($(compgen -W 'Accept: 
Authorization: 
Cache-Control: 
Content-Type: 
Cookie: 
Host: 
Idempotency-Key: 
If-None-Match: 
Range: 
User-Agent: ' -- "$cur"))
                compopt -o nospace 2>/dev/null
            fi
            return ;;
    esac
    # `stats --json` is the format, not --json DATA.
    [[ $lprev == --json && $sub == stats ]] && lprev=stats

    if [[ " ${file_opts//$'\n'/ } " == *" $lprev "* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [[ " $at_file_opts " == *" $lprev "* ]]; then
        # @FILE reads a file (@- standard input); -F NAME=@FILE and NAME=<FILE too.
        if [[ $cur == @* ]]; then
            COMPREPLY=($(compgen -f -P @ -- "${cur#@}"))
        elif [[ $cur == *=[@\<]* ]]; then
            local head=${cur%%=[@<]*} rest=${cur#*=}
            COMPREPLY=($(compgen -f -P "$head=${rest:0:1}" -- "${rest:1}"))
        fi
        return
    fi
    [[ " ${free_opts//$'\n'/ } " == *" $lprev "* ]] && return

    case $sub in
        stats)
            COMPREPLY=($(compgen -W '--json --prometheus --socket -s --silent -S --show-error' -- "$lcur"))
            return ;;
        batch)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W '-c --concurrency -H --header -f --fail --output-dir -m --max-time
                    --connect-timeout -L --location --max-redirs --compressed -s --silent -S --show-error
                    --socket --fallback -u --user -A --user-agent -e --referer -b --cookie' -- "$lcur"))
            else
                COMPREPLY=($(compgen -f -- "$cur") $(compgen -W '-' -- "$cur"))
            fi
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-X --request -H --header -d --data --data-ascii --data-binary --data-raw
            --data-urlencode --json -F --form --form-string -G --get -T --upload-file -u --user
            -A --user-agent -e --referer -b --cookie -c --cookie-jar -j --junk-session-cookies
            -n --netrc --netrc-file --netrc-optional -o --output -O --remote-name --remote-name-all
            --output-dir -J --remote-header-name --create-dirs --remove-on-error -C --continue-at
            -r --range -z --time-cond -R --remote-time --max-filesize -D --dump-header
            -i --include -I --head -v --verbose -s --silent --no-silent -S --show-error -f --fail
            --fail-with-body --fail-early -L --location --max-redirs --post301 --post302 --post303
            --location-trusted --proto --proto-redir --proto-default --compressed
            --connect-timeout -m --max-time --retry --retry-delay --retry-max-time
            --retry-connrefused --retry-all-errors -w --write-out --socket --fallback -g --globoff
            --url -K --config -q --disable -Z --parallel --parallel-immediate --parallel-max
            --unix-socket -k --insecure --cacert --capath --resolve --connect-to -x --proxy --noproxy
            -U --proxy-user -0 --http1.0 --http1.1 --http2 --http2-prior-knowledge
            -1 --tlsv1 --tlsv1.0 --tlsv1.1 --tlsv1.2 --tlsv1.3 --tls-max --ciphers -E --cert --key
            -4 --ipv4 -6 --ipv6 --no-progress-meter -# --progress-bar -N --no-buffer
            --tcp-nodelay --no-keepalive --ssl-reqd --styled-output --no-styled-output
            -V --version -h --help' -- "$lcur"))
    elif [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W 'stats batch http:// https://' -- "$cur"))
        [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *:// ]] && compopt -o nospace 2>/dev/null
    fi
} &&
    complete -F _recker recker recker-direct

# ex: filetype=sh
